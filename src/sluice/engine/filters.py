"""The template filters Sluice adds to Liquid's standard ones, for what vendors need.

A nil or undefined input renders empty for the hashing and encoding filters (a hash of
nothing sent to a vendor is worse than nothing); ``json`` writes it as ``null``; ``uuid``
makes a random one. Bad input (a phone number without a country code, a time that is no
time) stops the render with an error rather than sending something wrong.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
from liquid.builtin.filters.misc import date as liquid_date
from liquid.exceptions import FilterArgumentError, FilterValueError
from liquid.filter import with_environment
from liquid.undefined import Undefined

from sluice.engine import transforms

if TYPE_CHECKING:
    from liquid import Environment

_STRFTIME_EPOCH = re.compile(r"%%|%s")


def _text(value: Any) -> str | None:
    """The text a filter works on; None for nil and undefined."""
    if value is None or isinstance(value, Undefined):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, dict)):
        return json(value)
    return transforms.as_text(value) if isinstance(value, (int, float)) else str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, Undefined):
        return None
    if isinstance(value, Decimal):  # Liquid's math filters may return Decimals
        return float(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (Sequence, range)):
        return list(value)
    return str(value)


def json(value: Any) -> str:
    """``{{ event | json }}``: compact JSON; nil and undefined are ``null``."""
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode()


def sha256(value: Any) -> str:
    """Hex SHA-256 of the text."""
    text = _text(value)
    return "" if text is None else hashlib.sha256(text.encode()).hexdigest()


def md5(value: Any) -> str:
    """Hex MD5 of the text."""
    text = _text(value)
    return "" if text is None else hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def hmac_sha256(value: Any, key: Any = None, encoding: Any = "hex") -> str:
    """``{{ body | hmac_sha256: secret }}``: hex HMAC-SHA256 (``"base64"`` as 2nd argument)."""
    secret = _text(key)
    if not secret:
        raise FilterArgumentError(
            "hmac_sha256 needs a key: {{ value | hmac_sha256: key }}", token=None
        )
    if encoding not in ("hex", "base64"):
        raise FilterArgumentError("hmac_sha256 encodes as 'hex' or 'base64'", token=None)
    text = _text(value)
    if text is None:
        return ""
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha256)
    if encoding == "base64":
        return base64.b64encode(digest.digest()).decode("ascii")
    return digest.hexdigest()


def base64_filter(value: Any) -> str:
    """Standard base64 (with padding) of the UTF-8 text."""
    text = _text(value)
    return "" if text is None else base64.b64encode(text.encode()).decode("ascii")


def _iso(text: str) -> dt.datetime | None:
    """An ISO 8601 time keeping its offset, as Liquid does; a naive one is UTC."""
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _moment(value: Any) -> dt.datetime | None:
    """An aware datetime for the inputs Sluice handles itself; None leaves it to Liquid."""
    if isinstance(value, dt.datetime):
        # Only Liquid's ``now`` makes datetimes here: naive, in the server's local time.
        return value if value.tzinfo is not None else value.astimezone(dt.UTC)
    if isinstance(value, bool):
        return None
    number: int | float | None = None
    if isinstance(value, (int, float)):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if text.lower() in ("now", "today"):
            return dt.datetime.now(dt.UTC)
        number = transforms.parse_number(text)
        if number is None:
            return _iso(text)
    if number is None:
        return None
    try:
        return dt.datetime.fromtimestamp(transforms.unix_timestamp(number), dt.UTC)
    except (ValueError, OverflowError, OSError):
        return None


@with_environment
def date(value: Any, fmt: Any = None, *, environment: Environment) -> Any:
    """Liquid's ``date``, with unix times (s or ms) and ISO 8601 text read as UTC.

    An ISO time keeps its offset; ``%s`` in the format is the unix time whatever the
    server's time zone. Other inputs go to Liquid's own ``date``.
    """
    moment = _moment(value)
    if moment is None:
        return liquid_date(value, fmt, environment=environment)
    if fmt is None or isinstance(fmt, Undefined):
        return str(value)  # as Liquid: no format, the input unchanged
    # Formatted here, not by Liquid's ``date``: its cache treats equal instants in
    # different offsets as one and would print the offset of whichever came first.
    fmt = str(fmt)
    if "%s" in fmt:
        epoch = str(int(moment.timestamp()))
        fmt = _STRFTIME_EPOCH.sub(lambda m: "%%" if m.group() == "%%" else epoch, fmt)
    try:
        return moment.strftime(fmt)
    except ValueError as exc:
        raise FilterArgumentError(f"date: {exc}", token=None) from None


def unix_timestamp(value: Any) -> Any:
    """Integer seconds from ISO 8601 text, a number (s or ms) or ``"now"``; nil renders empty."""
    if value is None or isinstance(value, Undefined):
        return ""
    if isinstance(value, dt.datetime):
        return int(value.timestamp())  # a naive datetime is local time, as Liquid's ``now``
    if isinstance(value, str) and value.strip().lower() == "now":
        return int(time.time())
    try:
        return transforms.unix_timestamp(value)
    except ValueError as exc:
        raise FilterValueError(f"unix_timestamp: {exc}", token=None) from None


def uuid_filter(value: Any) -> str:
    """A UUID5 (namespace URL) of the input's text; a random UUID4 for nil or ``""``."""
    text = _text(value)
    if not text:
        return str(uuid.uuid4())
    return str(uuid.uuid5(uuid.NAMESPACE_URL, text))


def e164(value: Any) -> str:
    """A phone number as ``+<digits>``; nil renders empty; no country code is an error."""
    if value is None or isinstance(value, Undefined):
        return ""
    try:
        return transforms.e164(value)
    except ValueError as exc:
        raise FilterValueError(f"e164: {exc}", token=None) from None


FILTERS: dict[str, Callable[..., Any]] = {
    "json": json,
    "sha256": sha256,
    "md5": md5,
    "hmac_sha256": hmac_sha256,
    "base64": base64_filter,
    "date": date,
    "unix_timestamp": unix_timestamp,
    "uuid": uuid_filter,
    "e164": e164,
}
