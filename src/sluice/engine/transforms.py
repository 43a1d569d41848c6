"""The mapping transforms of SPEC §4, applied in order to a mapped value.

Conventions every transform follows:

- ``None`` (JSON null) passes through unchanged: there is nothing to transform.
- A list is transformed element by element (``["A@x.io"]`` + ``lowercase`` + ``sha256``
  hashes each address, as vendors like Meta expect), except by ``to_string``, which
  writes it as JSON.
- The text transforms (``trim`` ... ``e164``) take numbers and booleans as their text
  (``true``/``false``); an object is an error.
- Errors are ValueErrors whose messages never quote the event's value: error records are
  grouped by message, and the value may be personal data.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from sluice.engine._problems import Problems, choices
from sluice.timeutil import parse_iso

Transform = Callable[[Any], Any]

TRUE_WORDS = frozenset({"true", "1", "yes", "y", "on", "t"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "off", "f"})

# Unix times at or above this are taken as milliseconds: 1e11 s is the year 5138,
# 1e11 ms is March 1973, so no realistic value is ambiguous.
MILLISECONDS_FROM = 100_000_000_000

_PHONE_SEPARATORS = re.compile(r"[\s\-().\/]")


def kind_of(value: Any) -> str:
    """A short name for the JSON type of ``value``, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "empty text" if not value.strip() else "text"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def parse_number(text: str) -> int | float | None:
    """``"42"`` → 42, ``" -4.5e1 "`` → -45.0; None for anything else (nan, 1_000, "")."""
    # The length cap keeps int() away from its quadratic (and refused) huge inputs.
    if len(text) > 64:
        return None
    if text.isdigit() and text.isascii():  # the usual case, and the cheapest
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return None
    # float() also reads "nan", "inf", "1_000" and non-ASCII digits; JSON numbers do not.
    if not math.isfinite(number) or "_" in text or not text.isascii():
        return None
    if "." in text or "e" in text or "E" in text:
        return number
    return int(text)


def as_text(value: Any) -> str:
    """The text of a scalar: numbers as written, booleans as ``true``/``false``."""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise ValueError(f"expected text, got {kind_of(value)}")


def truth(value: Any) -> bool | None:
    """True/False for the boolean-like values (``"yes"``, 1, ``"off"`` ...), else None."""
    if value is True or value is False:
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    return None


def trim(value: Any) -> str:
    return as_text(value).strip()


def lowercase(value: Any) -> str:
    return as_text(value).lower()


def uppercase(value: Any) -> str:
    return as_text(value).upper()


def sha256(value: Any) -> str:
    return hashlib.sha256(as_text(value).encode()).hexdigest()


def md5(value: Any) -> str:
    return hashlib.md5(as_text(value).encode(), usedforsecurity=False).hexdigest()


def base64_encode(value: Any) -> str:
    return base64.b64encode(as_text(value).encode()).decode("ascii")


def url_encode(value: Any) -> str:
    """Form encoding, as Liquid's ``url_encode``: a space becomes ``+``."""
    return urllib.parse.quote_plus(as_text(value))


def e164(value: Any) -> str:
    """``"+1 (415) 555-2671"``, ``"0044 20 7946 0958"`` → ``"+14155552671"``, ``"+442079460958"``.

    A number must say its country: a leading ``+`` or ``00``. Guessing a country for
    ``"0612 345 678"`` would send messages to strangers, so that is an error.
    """
    if not isinstance(value, str):
        raise ValueError(
            f"expected a phone number as text starting with + or 00, got {kind_of(value)}"
        )
    text = value.strip()
    if text.startswith("+"):
        rest = text[1:]
    elif text.startswith("00"):
        rest = text[2:]
    else:
        raise ValueError(
            "the phone number has no country code: write it as +<country code><number> "
            "(or 00<country code><number>)"
        )
    # "+44 (0)20 7946 0958": the "(0)" is the national trunk prefix, dialled only at home.
    digits = _PHONE_SEPARATORS.sub("", rest.replace("(0)", "", 1))
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(
            "the phone number may hold only digits, spaces, dashes, dots and parentheses"
        )
    if digits.startswith("0"):
        raise ValueError("the phone number's country code cannot start with 0")
    if not 7 <= len(digits) <= 15:
        raise ValueError(f"the phone number has {len(digits)} digits; E.164 numbers have 7 to 15")
    return "+" + digits


def to_number(value: Any) -> int | float:
    """Numbers pass; numeric text is parsed (``"42"`` → 42, ``"4.2"`` → 4.2); booleans are 1/0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        number = parse_number(value)
        if number is not None:
            return number
    raise ValueError(f"expected a number, got {kind_of(value)}")


def to_string(value: Any) -> str:
    """Scalars as their text; lists and objects as compact JSON."""
    if isinstance(value, (list, tuple, dict)):
        return orjson.dumps(value).decode()
    return as_text(value)


def to_boolean(value: Any) -> bool:
    """true/false, yes/no, on/off, y/n, t/f, 1/0 (any case); a number is true unless 0."""
    result = truth(value)
    if result is None:
        raise ValueError(
            f"expected a boolean (true/false, yes/no, on/off, 1/0), got {kind_of(value)}"
        )
    return result


def unix_timestamp(value: Any) -> int:
    """Integer seconds since 1970 from an ISO 8601 text or a number (seconds or milliseconds).

    Naive ISO times are UTC; numbers at or above 1e11 are taken as milliseconds.
    """
    if isinstance(value, bool):
        raise ValueError("expected a time (ISO 8601 text or a number), got a boolean")
    number: int | float | None = None
    if isinstance(value, (int, float)):
        number = value
    elif isinstance(value, str):
        number = parse_number(value)
        if number is None:
            try:
                return math.floor(parse_iso(value))
            except ValueError:
                raise ValueError(
                    "expected a time as ISO 8601 text (2024-05-01T12:00:00Z) or a number of seconds"
                ) from None
    if number is None or not math.isfinite(number):
        raise ValueError(f"expected a time (ISO 8601 text or a number), got {kind_of(value)}")
    if abs(number) >= MILLISECONDS_FROM:
        number = number / 1000
    return math.floor(number)


_TRANSFORMS: dict[str, Transform] = {
    "trim": trim,
    "lowercase": lowercase,
    "uppercase": uppercase,
    "sha256": sha256,
    "md5": md5,
    "base64": base64_encode,
    "url_encode": url_encode,
    "e164": e164,
    "to_number": to_number,
    "to_string": to_string,
    "to_boolean": to_boolean,
    "unix_timestamp": unix_timestamp,
}
TRANSFORM_NAMES: tuple[str, ...] = tuple(_TRANSFORMS)
_WHOLE_VALUE = frozenset({"to_string"})  # these see a list as one value


def validate_transforms(raw: Any, field: str = "transforms") -> list[str]:
    """The list of transform names, or ValidationFailed naming ``field[i]``."""
    if raw is None:
        return []
    problems = Problems()
    if not isinstance(raw, list):
        problems.add(field, "must be a list of transform names")
        problems.raise_if_any()
    names: list[str] = []
    for index, name in enumerate(raw):
        if isinstance(name, str) and name in _TRANSFORMS:
            names.append(name)
        else:
            problems.add(f"{field}[{index}]", choices("transform", name, TRANSFORM_NAMES))
    problems.raise_if_any()
    return names


def _step(name: str) -> Transform:
    func = _TRANSFORMS[name]
    whole = name in _WHOLE_VALUE

    def apply(value: Any) -> Any:
        try:
            if isinstance(value, list) and not whole:
                return [None if item is None else func(item) for item in value]
            return func(value)
        except ValueError as exc:
            raise ValueError(f"transform {name!r}: {exc}") from None

    return apply


def compile_transforms(names: Sequence[str]) -> Transform | None:
    """One function applying ``names`` in order (None passes through); None for no names."""
    unknown = [name for name in names if name not in _TRANSFORMS]
    if unknown:
        raise ValueError(choices("transform", unknown[0], TRANSFORM_NAMES))
    steps = tuple(_step(name) for name in names)
    if not steps:
        return None
    if len(steps) == 1:
        only = steps[0]

        def apply_one(value: Any) -> Any:
            return None if value is None else only(value)

        return apply_one

    def apply_all(value: Any) -> Any:
        for step in steps:
            if value is None:
                return None
            value = step(value)
        return value

    return apply_all


def apply_transforms(value: Any, names: Sequence[str]) -> Any:
    """``value`` after each transform in turn; ValueError saying which one failed and why."""
    chain = compile_transforms(names)
    return value if chain is None else chain(value)
