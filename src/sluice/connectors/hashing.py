"""What the ads and analytics conversion connectors share: user data, event times, batches.

Meta, TikTok and Pinterest match people by SHA-256 hashes of normalised contact details;
each documents how to normalise before hashing (lowercase, trim, phone digits with the
country code, ...). :func:`hashed` does it once for all of them, and passes a value that is
already a SHA-256 hex digest through unchanged, so nothing is hashed twice.

:func:`pack_events` is :func:`sluice.connectors.batching.pack` as these vendors need it; an
input whose mapping fails rides along, after the events sent, instead of failing the batch.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from sluice.connectors.batching import Batch, json_entry, pack
from sluice.connectors.definition import ActionInput, Batching, Field, Outcome
from sluice.connectors.helpers import as_text, is_blank
from sluice.errors import FatalDelivery, MappingError, RetryableDelivery

Kind = Literal[
    "email", "phone", "phone_e164", "name", "city", "state", "zip", "country", "gender", "dob", "id"
]

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_ZIP_PLUS_FOUR = re.compile(r"^(\d{5})-?\d{4}$")
_GENDERS = {"f": "f", "female": "f", "m": "m", "male": "m", "n": "n", "non-binary": "n"}


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_sha256(value: str) -> bool:
    return bool(_SHA256.match(value))


def _letters(text: str) -> str:
    """Only the letters (any script): no digits, spaces or punctuation."""
    return "".join(c for c in text if c.isalpha())


def _phone_digits(text: str, parameter: str) -> str:
    # "+44 20 7946 0958" and "0044 20 7946 0958" both become 442079460958; a number
    # written without its country code cannot be repaired here (map it with e164).
    digits = re.sub(r"\D", "", text).lstrip("0")
    if not 7 <= len(digits) <= 15:
        raise MappingError(
            parameter, f"{text[:40]!r} is not a phone number with its country code (E.164)"
        )
    return digits


def normalise(kind: Kind, value: Any, parameter: str) -> str | None:
    """``value`` as the vendors want it before hashing; None when blank."""
    if is_blank(value):
        return None
    text = unicodedata.normalize("NFC", as_text(value, parameter)).strip()
    if kind == "email":
        text = text.lower()
        local, at, domain = text.rpartition("@")
        if not (at and local and "." in domain) or any(c.isspace() for c in text):
            raise MappingError(parameter, f"{text[:60]!r} is not an email address")
        return text
    if kind == "phone":
        return _phone_digits(text, parameter)
    if kind == "phone_e164":
        return "+" + _phone_digits(text, parameter)
    if kind == "name":
        return "".join(c for c in text.lower() if not unicodedata.category(c).startswith("P"))
    if kind in ("city", "state", "country"):
        return _letters(text.lower()) or None
    if kind == "zip":
        us = _ZIP_PLUS_FOUR.match(text)
        return us.group(1) if us else re.sub(r"[\s-]", "", text.lower()) or None
    if kind == "gender":
        gender = _GENDERS.get(text.lower())
        if gender is None:
            raise MappingError(parameter, f"{text[:20]!r} is not a gender: use f, m or n")
        return gender
    if kind == "dob":
        return re.sub(r"\D", "", text) or None  # 1990-01-31 -> 19900131
    return text  # "id": identifiers may be case-sensitive, so only trimmed


def hashed(kind: Kind, value: Any, parameter: str) -> str | None:
    """The SHA-256 hex digest of the normalised value; a digest already is kept as it is."""
    if isinstance(value, str) and is_sha256(value.strip()):
        return value.strip().lower()
    text = normalise(kind, value, parameter)
    return None if text is None else sha256_hex(text)


def hashed_list(kind: Kind, value: Any, parameter: str) -> list[str]:
    """Hashes of one value or of each value of a list, blanks left out, duplicates once."""
    values = value if isinstance(value, list | tuple) else [value]
    found: list[str] = []
    for item in values:
        digest = hashed(kind, item, parameter)
        if digest is not None and digest not in found:
            found.append(digest)
    return found


# What each contact detail is, and how it is normalised before hashing (for help texts).
CONTACT_DETAILS: dict[str, tuple[str, str]] = {
    "email": ("Email", "Trimmed and lowercased."),
    "phone": ("Phone", "Digits with the country code (map it with the e164 transform)."),
    "first_name": ("First name", "Lowercased, without punctuation."),
    "last_name": ("Last name", "Lowercased, without punctuation."),
    "city": ("City", "Lowercased letters only."),
    "state": ("State", "Two-letter code in the US, lowercased letters only."),
    "zip_code": ("ZIP code", "Lowercased, no spaces or dash; 5 digits in the US."),
    "country": ("Country", "Two-letter ISO 3166 code, lowercased."),
    "external_id": ("External ID", "Your ID for the customer, trimmed."),
    "gender": ("Gender", "One letter, lowercased."),
    "date_of_birth": ("Date of birth", "YYYYMMDD (1990-01-31 is accepted)."),
    "mobile_ad_id": ("Mobile ad ID", "The device's GAID or IDFA, trimmed."),
}


def contact_fields(
    table: Mapping[str, tuple[str, Kind]], group: str, genders: tuple[str, ...]
) -> tuple[Field, ...]:
    """One parameter per contact detail of ``table`` (parameter -> vendor key, kind)."""
    return tuple(
        Field(
            name,
            CONTACT_DETAILS[name][0],
            group=group,
            help=f"{CONTACT_DETAILS[name][1]} Sent in {key}, SHA-256 hashed.",
            enum=genders if kind == "gender" else None,
        )
        for name, (key, kind) in table.items()
    )


# Parameter -> (user_data key, normalisation) of the customer information Meta and Pinterest
# both document, with the same keys and the same rules; each takes a list of hashes a key.
USER_DATA: dict[str, tuple[str, Kind]] = {
    "email": ("em", "email"),
    "phone": ("ph", "phone"),
    "first_name": ("fn", "name"),
    "last_name": ("ln", "name"),
    "city": ("ct", "city"),
    "state": ("st", "state"),
    "zip_code": ("zp", "zip"),
    "country": ("country", "country"),
    "external_id": ("external_id", "id"),
    "gender": ("ge", "gender"),
    "date_of_birth": ("db", "dob"),
}


def user_data(
    params: Mapping[str, Any],
    table: Mapping[str, tuple[str, Kind]],
    plain: Sequence[str],
    *,
    one_each: bool = False,
) -> dict[str, Any]:
    """Hashes by vendor key for ``table``, then the ``plain`` parameters in clear.

    Each key holds a list of hashes, or with ``one_each`` the hash of one value.
    """
    user: dict[str, Any] = {}
    for name, (key, kind) in table.items():
        if one_each:
            digest = hashed(kind, params.get(name), name)
            if digest is not None:
                user[key] = digest
            continue
        digests = hashed_list(kind, params.get(name), name)
        if digests:
            user[key] = digests
    for name in plain:
        if not is_blank(params.get(name)):
            user[name] = as_text(params[name], name).strip()
    return user


def commerce(params: Mapping[str, Any], extra: str, texts: Sequence[str]) -> dict[str, Any]:
    """The ``extra`` map, then value, currency, content_ids, contents, num_items and ``texts``."""
    data = mapping(params, extra)
    value = params.get("value")
    if not is_blank(value):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise MappingError("value", f"must be a number, got {value!r}")
        data["value"] = value
    if not is_blank(params.get("currency")):
        data["currency"] = as_text(params["currency"], "currency").strip().upper()
    ids = listing(params, "content_ids")
    if ids is not None:
        # IDs are text for the vendors: numbers are written as text, the rest left to them.
        data["content_ids"] = [
            as_text(i, "content_ids") if isinstance(i, int | float) else i
            for i in ids
            if not is_blank(i)
        ]
    contents = listing(params, "contents")
    if contents is not None:
        if not all(isinstance(item, Mapping) for item in contents):
            raise MappingError("contents", "must be a JSON array of product objects")
        data["contents"] = contents
    if not is_blank(params.get("num_items")):
        data["num_items"] = params["num_items"]
    for name in texts:
        if not is_blank(params.get(name)):
            data[name] = as_text(params[name], name).strip()
    return data


def epoch_seconds(value: Any, parameter: str) -> float:
    """Seconds since the epoch from seconds, milliseconds or microseconds, or ISO 8601 text."""
    if isinstance(value, str):
        try:
            value = float(value.strip())  # mapped numbers often arrive as text
        except ValueError:
            pass
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        # Told apart by size: seconds until the year 5138, then ms, then µs.
        return number / 1e6 if number > 1e14 else number / 1e3 if number > 1e11 else number
    text = as_text(value, parameter).strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MappingError(parameter, f"{text[:40]!r} is not a Unix time or ISO 8601") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def event_time(event: ActionInput, parameter: str = "event_time") -> float:
    """The mapped time, else when Sluice received the event (kept across retries)."""
    value = event.params.get(parameter)
    if is_blank(value):
        value = event.data.get("received_at")
    if is_blank(value):
        return datetime.now(UTC).timestamp()
    return epoch_seconds(value, parameter)


def batch_fields(limits: Batching) -> tuple[Field, ...]:
    """The settings the engine reads to narrow an action's batches (constants only)."""
    return (
        Field(
            "max_batch_size",
            "Maximum batch size",
            "integer",
            group="Batching",
            help=f"Send a batch once it holds this many events (at most {limits.max_count:,}).",
        ),
        Field(
            "max_batch_age_seconds",
            "Maximum batch age (seconds)",
            "number",
            group="Batching",
            help=(
                "Send a batch at the latest this long after its first event "
                f"(at most {limits.max_age_seconds:g})."
            ),
        ),
    )


def pack_events(
    inputs: Sequence[ActionInput],
    make: Callable[[ActionInput], dict[str, Any]],
    *,
    max_count: int,
    max_bytes: int,
    group: Callable[[dict[str, Any]], Hashable] | None = None,
) -> list[Batch[dict[str, Any]]]:
    """Bodies made by ``make`` in batches under the limits (and by ``group`` when given).

    An event too large alone is refused; refused inputs ride along after the last batch's.
    """
    return pack(
        inputs,
        lambda event: json_entry(make(event)),
        max_count=max_count,
        max_bytes=max_bytes,
        overhead=200,  # the envelope around the events, with room to spare
        too_big=("body", f"the event is larger than the {max_bytes:,} bytes"),
        group=group,
        rejected_last=True,
    )


def refused_batch(error: FatalDelivery, text: str, sent: int) -> Outcome | list[Outcome]:
    """A batch refused whole for the events ``text`` names as ``data[N]``.

    The named events fail with ``error``; the others did nothing wrong and are retried, so
    they go again (in another batch) without them. Naming none, the whole batch fails.
    """
    named = {int(n) for n in re.findall(r"data\[(\d+)\]", text) if int(n) < sent}
    if not named or sent < 2:
        return error
    again = RetryableDelivery(
        "http_4xx",
        "refused with another event of its batch; sending again",
        status_code=error.status_code,
    )
    return [error if index in named else again for index in range(sent)]


def json_body(body: bytes) -> dict[str, Any]:
    """A vendor's JSON answer as a dict; anything else as an empty one."""
    try:
        doc = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def mapping(params: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A ``map`` or ``object`` parameter as a dict (JSON text is parsed); missing is empty."""
    value = params.get(name)
    if is_blank(value):
        return {}
    if isinstance(value, str):
        value = _parse_json(value, name)
    if not isinstance(value, Mapping):
        raise MappingError(name, f"must be a map of names to values, got {type(value).__name__}")
    return {str(k): v for k, v in value.items() if v is not None}


def listing(params: Mapping[str, Any], name: str) -> list[Any] | None:
    """A ``list`` parameter as a list (JSON text is parsed, one value becomes a list)."""
    value = params.get(name)
    if is_blank(value):
        return None
    if isinstance(value, str) and value.lstrip().startswith("["):
        value = _parse_json(value, name)
    return list(value) if isinstance(value, list | tuple) else [value]


def _parse_json(text: str, name: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise MappingError(name, f"is not valid JSON: {exc}") from exc
