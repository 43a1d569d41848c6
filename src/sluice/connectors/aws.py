"""What the AWS connectors share: credentials, regional endpoints, SigV4 signing, errors.

Requests use the AWS JSON protocol (``POST /`` with ``X-Amz-Target``) and are signed with
Signature Version 4 by botocore, imported only when a request is signed: botocore is heavy
and an idle Sluice process never needs it.

Vendor docs used: signing https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html;
common errors https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html
and the JSON error shape https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-json-api-responses.html;
throttling codes as botocore's retry handler lists them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from sluice.connectors.batching import Batch, BatchRequest, with_rejected
from sluice.connectors.definition import (
    BuildContext,
    Field,
    HttpRequest,
    HttpResponse,
    Outcome,
    classify_status,
    parse_retry_after,
)
from sluice.connectors.helpers import dump_json, is_blank
from sluice.errors import FatalDelivery, MappingError, RetryableDelivery

DEFAULT_REGION = "us-east-1"
SENSITIVE_HEADERS = frozenset({"authorization", "x-amz-security-token"})
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "SlowDown",
        "KmsThrottled",
        "KMSThrottlingException",
        "AWS.SimpleQueueService.RequestThrottled",
    }
)
AUTH_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "MissingAuthenticationTokenException",
        "AccessDenied",
        "AccessDeniedException",
        "NotAuthorized",
        "AuthFailure",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "OptInRequired",
        "InvalidSecurity",
        "KmsAccessDenied",
        "KMSAccessDeniedException",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "InternalFailure",
        "InternalFailureException",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
    }
)


def credential_fields(service: str, endpoint: str) -> tuple[Field, ...]:
    """The configuration every AWS connector starts with."""
    return (
        Field(
            "region",
            "Region",
            required=True,
            group="AWS credentials",
            default=DEFAULT_REGION,
            help=(
                f"The AWS Region of the {service}, e.g. us-east-1 or eu-west-1; requests go to "
                f"{endpoint} and are signed for it (also when the base URL is overridden)."
            ),
        ),
        Field(
            "access_key_id",
            "Access key ID",
            required=True,
            group="AWS credentials",
            help="The access key ID of an IAM user or role allowed to write to it (AKIA...).",
        ),
        Field(
            "secret_access_key",
            "Secret access key",
            required=True,
            secret=True,
            group="AWS credentials",
            help="The secret access key that belongs to the access key ID.",
        ),
        Field(
            "session_token",
            "Session token",
            secret=True,
            group="AWS credentials",
            help="Only for temporary credentials (an access key ID starting with ASIA).",
        ),
    )


def region_of(config: Mapping[str, Any]) -> str:
    region = str(config.get("region") or DEFAULT_REGION).strip()
    if not _REGION.match(region):
        raise FatalDelivery("auth", f"{region[:40]!r} is not an AWS Region code like us-east-1")
    return region


def endpoint(ctx: BuildContext, default: str) -> str:
    """The API root: ``base_url`` (or the type's default) with ``{region}`` filled in."""
    region = region_of(ctx.config)
    url = (ctx.base_url or default).rstrip("/")
    if url == default.rstrip("/") and region.startswith("cn-"):
        url += ".cn"  # the China Regions live under amazonaws.com.cn
    return url.replace("{region}", region)


def token(value: str, limit: int, allowed: re.Pattern[str]) -> str:
    """``value`` when AWS would take it as an id, else its SHA-256 (64 hex characters)."""
    if 0 < len(value) <= limit and allowed.match(value):
        return value
    return hashlib.sha256(value.encode()).hexdigest()


def sign(
    ctx: BuildContext, service: str, url: str, headers: dict[str, str], body: bytes
) -> dict[str, str]:
    """``headers`` plus ``X-Amz-Date``, ``Authorization`` (and the session token), SigV4."""
    key_id = str(ctx.config.get("access_key_id") or "").strip()
    secret = str(ctx.config.get("secret_access_key") or "").strip()
    if not key_id or not secret:
        raise FatalDelivery("auth", "the access key ID and secret access key are both required")
    session_token = str(ctx.config.get("session_token") or "").strip() or None
    region = region_of(ctx.config)
    # Lazily: importing botocore costs tens of MB and a noticeable start-up time.
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(Credentials(key_id, secret, session_token), service, region).add_auth(request)
    return {str(name): str(value) for name, value in request.headers.items()}


@dataclass
class AwsRequest(BatchRequest):
    """A signed request; ``digests`` holds the MD5 of each sent SQS message body (by its
    position in ``items``), to check SQS's receipt."""

    target: str = ""
    digests: dict[int, str] = field(default_factory=dict)


def signed_json(
    ctx: BuildContext,
    *,
    service: str,
    url: str,
    target: str,
    content_type: str,
    payload: Mapping[str, Any],
    batch: Batch[Any],
    digests: dict[int, str] | None = None,
) -> AwsRequest:
    body = dump_json(payload, "body")
    headers = {"Content-Type": content_type, "X-Amz-Target": target}
    return AwsRequest(
        "POST",
        url,
        sign(ctx, service, url, headers, body),
        body,
        tuple(batch.items),
        SENSITIVE_HEADERS,
        rejected=batch.rejected,
        target=target,
        digests=digests or {},
    )


def per_item(request: HttpRequest, outcomes: list[Outcome]) -> Outcome | list[Outcome]:
    """``outcomes`` of the sent entries as one per item: None when every one is None."""
    result = with_rejected(request, outcomes)
    return None if isinstance(result, list) and all(o is None for o in result) else result


def parse_error(response: HttpResponse) -> tuple[str, str]:
    """The AWS error code and message of an error answer (either may be empty)."""
    try:
        body = orjson.loads(response.body) if response.body else {}
    except orjson.JSONDecodeError:
        body = {}
    body = body if isinstance(body, dict) else {}
    message = str(body.get("message") or body.get("Message") or "").strip()
    code = str(body.get("__type") or body.get("code") or "")
    code = code.split(":", 1)[0].rsplit("#", 1)[-1]
    # SQS answers in JSON but keeps its older Query error codes in this header.
    query_error = response.headers.get("x-amzn-query-error", "").split(";")
    if len(query_error) == 2 and query_error[0]:
        code = query_error[0]
    if not code:
        code = response.headers.get("x-amzn-errortype", "").split(":", 1)[0]
    return code, message


def classify_code(
    service: str,
    code: str,
    message: str,
    status: int | None,
    hints: Mapping[str, str],
    retry_after: float | None = None,
) -> Outcome:
    """What an AWS error code means for Sluice; ``hints`` add advice for some codes."""
    text = f"{service}: {code}" + (f": {message}" if message else "")
    base = code.removeprefix("AWS.SimpleQueueService.")
    hint = hints.get(base) or hints.get(code)
    if hint:
        text += f" ({hint})"
    if code in THROTTLING_CODES or base in THROTTLING_CODES:
        return RetryableDelivery("rate_limit", text, status_code=status, retry_after=retry_after)
    if code in AUTH_CODES or base in AUTH_CODES:
        return FatalDelivery("auth", text, status_code=status)
    if code in TRANSIENT_CODES or base in TRANSIENT_CODES:
        return RetryableDelivery("http_5xx", text, status_code=status, retry_after=retry_after)
    return None if not code else FatalDelivery("http_4xx", text, status_code=status)


def classify_error(service: str, response: HttpResponse, hints: Mapping[str, str]) -> Outcome:
    """A whole-request AWS error answer (any status but 2xx)."""
    code, message = parse_error(response)
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    outcome = classify_code(service, code, message, response.status, hints, retry_after)
    if outcome is not None:
        if response.status in (401, 403) and outcome.category == "http_4xx":
            return FatalDelivery("auth", outcome.message, status_code=response.status)
        if response.status >= 500 and isinstance(outcome, FatalDelivery):
            # An unknown code on a 5xx is still the service's trouble: retry it.
            return RetryableDelivery("http_5xx", outcome.message, status_code=response.status)
        return outcome
    fallback = classify_status(response)
    if isinstance(fallback, RetryableDelivery):
        return RetryableDelivery(
            fallback.category,
            f"{service}: {fallback.message}",
            status_code=fallback.status_code,
            retry_after=fallback.retry_after,
        )
    if fallback is not None:
        return FatalDelivery(
            fallback.category, f"{service}: {fallback.message}", status_code=fallback.status_code
        )
    return None


def utf8_size(value: str) -> int:
    return len(value.encode("utf-8"))


def optional_text(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if is_blank(value):
        return None
    if isinstance(value, bool | int | float):
        return orjson.dumps(value).decode()
    if not isinstance(value, str):
        raise MappingError(name, f"must be text, got {type(value).__name__}")
    return value
