"""The conformance kit every connector type gets for free, built-in or from a plugin.

::

    from sluice.connectors.testing import check_definition, check_example, check_error_mapping

Each ``check_*`` raises :class:`AssertionError` listing every problem it found, so it reads
well in pytest; nothing here needs a network, a database or the engine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from sluice.connectors.definition import (
    ActionInput,
    ActionType,
    BuildContext,
    ConnectorType,
    Field,
    HttpRequest,
    HttpResponse,
    Outcome,
)
from sluice.connectors.helpers import is_http_url
from sluice.connectors.validation import validate_connector_type
from sluice.errors import ERROR_CATEGORIES, DeliveryError, RetryableDelivery

__all__ = [
    "SAMPLE_EVENT",
    "ErrorCase",
    "RecordedExample",
    "check_definition",
    "check_error_mapping",
    "check_example",
    "definition_problems",
    "make_context",
    "make_inputs",
    "response",
    "sample_config",
    "sample_params",
    "sample_value",
]

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
BATCH_SAMPLE_SIZE = 3
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

# An event as the engine hands it over (SPEC §3): flat, with event_id and received_at.
SAMPLE_EVENT: dict[str, Any] = {
    "event_id": "0b7e4f4e-8c1a-4d59-9a53-5f4c8f8d2a10",
    "received_at": "2024-05-01T12:00:00.000Z",
    "tealium_account": "acme",
    "tealium_profile": "main",
    "tealium_event": "purchase",
    "tealium_visitor_id": "visitor-0001",
    "order_id": "A-1001",
    "order_total": 42.5,
    "currency": "EUR",
    "customer_email": "ada@example.com",
    "customer_phone": "+15555550100",
}


def sample_value(f: Field) -> Any:
    """A plausible value for a field: its default, else one made up from its type and name."""
    if f.default is not None:
        return f.default
    if f.enum:
        return f.enum[0]
    name = f.name.lower()
    if f.type in ("string", "text") and "email" in name:
        return "ada@example.com"
    if f.type in ("string", "text") and ("phone" in name or name in ("to", "from")):
        return "+15555550100"
    samples: dict[str, Any] = {
        "string": f"sample-{f.name}",
        "text": f"Sample {f.title} for order A-1001",
        "url": f"https://example.com/sluice/{f.name}",
        "number": 1.5,
        "integer": 2,
        "boolean": True,
        "map": {"sample_key": "sample value"},
        "list": [{"type": "sample", "text": "sample"}],
        "object": {"sample_key": "sample value"},
    }
    return samples[f.type]


def sample_config(ct: ConnectorType, *, minimal: bool = False, **overrides: Any) -> dict[str, Any]:
    """A configuration with every field set (only the required ones when ``minimal``)."""
    fields = [f for f in ct.all_configuration() if f.required or not minimal]
    config = {f.name: sample_value(f) for f in fields}
    config.update(overrides)
    return config


def sample_params(
    action: ActionType, samples: Mapping[str, Any] | None = None, *, minimal: bool = False
) -> dict[str, Any]:
    """Parameters with every one set (only the required ones when ``minimal``).

    ``samples`` overrides values by parameter name, or by ``action_id.parameter``.
    """
    samples = samples or {}
    params: dict[str, Any] = {}
    for param in action.parameters:
        if minimal and not param.required:
            continue
        for key in (f"{action.id}.{param.name}", param.name):
            if key in samples:
                params[param.name] = samples[key]
                break
        else:
            params[param.name] = sample_value(param)
    return params


def make_inputs(
    action_id: str,
    params: Sequence[Mapping[str, Any] | ActionInput],
    data: Sequence[Mapping[str, Any]] = (),
) -> list[ActionInput]:
    """ActionInputs from parameter dicts: event ``evt_N`` has idempotency key ``evt_N:<action>``."""
    inputs: list[ActionInput] = []
    for index, item in enumerate(params):
        if isinstance(item, ActionInput):
            inputs.append(item)
            continue
        event_id = f"evt_{index + 1}"
        event = dict(data[index]) if index < len(data) else {**SAMPLE_EVENT, "event_id": event_id}
        inputs.append(ActionInput(item, event, event_id, f"{event_id}:{action_id}"))
    return inputs


def make_context(ct: ConnectorType, action_id: str, config: Mapping[str, Any]) -> BuildContext:
    """What the engine passes to ``build``: the configuration and the effective base URL."""
    base_url = config.get("base_url") or ct.base_url
    return BuildContext(config, base_url, action_id=action_id, connector_id=f"con_test_{ct.id}")


def response(
    status: int, body: bytes | str = b"", headers: Mapping[str, str] | None = None
) -> HttpResponse:
    """An HttpResponse for error-mapping cases; header names are lower-cased like the engine's."""
    raw = body.encode() if isinstance(body, str) else body
    return HttpResponse(status, {k.lower(): v for k, v in (headers or {}).items()}, raw)


def _request_problems(req: object, where: str, count: int) -> list[str]:
    if not isinstance(req, HttpRequest):
        return [f"{where}: build returned {type(req).__name__}, not an HttpRequest"]
    problems: list[str] = []
    if req.method not in METHODS:
        problems.append(f"{where}: method {req.method!r} is not an upper-case HTTP method")
    if not is_http_url(req.url):
        problems.append(f"{where}: URL {req.url!r} is not an absolute http(s) URL")
    for name, value in req.headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            problems.append(f"{where}: header name {name!r} is not valid")
        if not isinstance(value, str) or any(c in value for c in "\r\n"):
            problems.append(f"{where}: header {name!r} must be text without line breaks")
    if req.body is not None and not isinstance(req.body, bytes):
        problems.append(f"{where}: the body must be bytes or None, not {type(req.body).__name__}")
    if not req.items or any(not isinstance(i, int) or not 0 <= i < count for i in req.items):
        problems.append(f"{where}: items {req.items!r} must index the {count} input(s)")
    return problems


def _outcome_problems(result: object, req: HttpRequest, where: str) -> list[str]:
    outcomes = result if isinstance(result, list) else [result]
    if isinstance(result, list) and len(result) != len(req.items):
        return [f"{where}: {len(result)} outcomes for {len(req.items)} items"]
    problems: list[str] = []
    for outcome in outcomes:
        if outcome is not None and not isinstance(outcome, DeliveryError):
            problems.append(f"{where}: returned {outcome!r}, not None or a DeliveryError")
        elif outcome is not None and outcome.category not in ERROR_CATEGORIES:
            problems.append(f"{where}: unknown error category {outcome.category!r}")
    return problems


def _check_build(
    ct: ConnectorType, action: ActionType, samples: Mapping[str, Any] | None, *, minimal: bool
) -> list[str]:
    label = "required values only" if minimal else "every value set"
    where = f"action {action.id!r} ({label})"
    count = BATCH_SAMPLE_SIZE if action.batching else 1
    params = [sample_params(action, samples, minimal=minimal) for _ in range(count)]
    inputs = make_inputs(action.id, params)
    ctx = make_context(ct, action.id, sample_config(ct, minimal=minimal))
    try:
        requests = action.build(ctx, inputs)
    except Exception as exc:
        return [f"{where}: build failed on a sample event: {type(exc).__name__}: {exc}"]
    if not isinstance(requests, list) or not requests:
        return [f"{where}: build must return a non-empty list of HttpRequest"]
    problems: list[str] = []
    for n, req in enumerate(requests):
        problems.extend(_request_problems(req, f"{where}: request {n}", count))
    if problems:
        return problems
    carried = sorted(i for req in requests for i in req.items)
    if carried != list(range(count)):
        problems.append(f"{where}: the requests carry items {carried}, not each input once")
    if action.batching and not any(len(req.items) > 1 for req in requests):
        problems.append(f"{where}: a batching action sent {count} sample events one by one")
    first = requests[0]
    checks = [(response(200, b"{}"), None), (response(429, b"", {"Retry-After": "7"}), 429)]
    for resp, status in checks:
        try:
            result = action.classify(first, resp)
        except Exception as exc:
            problems.append(f"{where}: classify raised on HTTP {resp.status}: {exc!r}")
            continue
        problems.extend(_outcome_problems(result, first, f"{where}: classify(HTTP {resp.status})"))
        outcomes = result if isinstance(result, list) else [result]
        if status == 429 and not all(isinstance(o, RetryableDelivery) for o in outcomes):
            problems.append(f"{where}: classify must retry an HTTP 429")
    return problems


def definition_problems(ct: ConnectorType, samples: Mapping[str, Any] | None = None) -> list[str]:
    """What :func:`check_definition` complains about, as a list."""
    problems = validate_connector_type(ct)
    if problems:
        return problems  # building with a broken definition would only add noise
    if not ct.what_you_need:
        problems.append("what_you_need is empty: say which accounts and credentials it takes")
    for action in ct.actions:
        if not action.user_consent and not action.consent_categories:
            problems.append(f"action {action.id!r}: consent_categories is empty")
        for param in action.parameters:
            if param.required and param.group is None:
                problems.append(
                    f"action {action.id!r}: required parameter {param.name!r} has no group "
                    "(the UI shows COMPLETED/INCOMPLETE per group)"
                )
        for minimal in (False, True):
            problems.extend(_check_build(ct, action, samples, minimal=minimal))
    return problems


def check_definition(ct: ConnectorType, samples: Mapping[str, Any] | None = None) -> None:
    """Validate ``ct`` and run every action's ``build`` and ``classify`` on sample data.

    ``samples`` gives values for parameters whose made-up sample would not do (a phone
    number, a JSON template), by ``parameter`` or ``action_id.parameter``.
    """
    problems = definition_problems(ct, samples)
    if problems:
        raise AssertionError(f"{ct.id}: " + "\n  ".join(["problems:", *problems]))


@dataclass(frozen=True)
class RecordedExample:
    """Inputs of one action and the requests it must produce, as recorded from the vendor's docs.

    ``inputs`` holds each event's parameters (or a whole ActionInput); ``data`` the events
    (default: SAMPLE_EVENT). Each ``expected`` request has ``method`` and ``url``, and
    optionally ``headers`` (a subset, names in any case), ``json`` (the parsed body),
    ``body`` (exact text or bytes) and ``items``.
    """

    action: str
    config: Mapping[str, Any]
    inputs: Sequence[Mapping[str, Any] | ActionInput]
    expected: Sequence[Mapping[str, Any]]
    data: Sequence[Mapping[str, Any]] = ()
    name: str = ""


def _compare(req: HttpRequest, want: Mapping[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    for key in ("method", "url"):
        if key in want and getattr(req, key) != want[key]:
            problems.append(f"{where}: {key} {getattr(req, key)!r} != {want[key]!r}")
    actual = {name.lower(): value for name, value in req.headers.items()}
    for name, value in want.get("headers", {}).items():
        if actual.get(name.lower()) != value:
            problems.append(f"{where}: header {name} {actual.get(name.lower())!r} != {value!r}")
    if "json" in want:
        try:
            body = orjson.loads(req.body or b"")
        except orjson.JSONDecodeError:
            problems.append(f"{where}: the body is not JSON: {req.body!r}")
        else:
            if body != want["json"]:
                problems.append(f"{where}: JSON body {body!r} != {want['json']!r}")
    if "body" in want:
        expected = want["body"].encode() if isinstance(want["body"], str) else want["body"]
        if req.body != expected:
            problems.append(f"{where}: body {req.body!r} != {expected!r}")
    if "items" in want and tuple(req.items) != tuple(want["items"]):
        problems.append(f"{where}: items {req.items!r} != {tuple(want['items'])!r}")
    return problems


def check_example(ct: ConnectorType, example: RecordedExample) -> list[HttpRequest]:
    """Build the example's requests and compare them with the recording; returns them."""
    action = ct.action(example.action)
    if action is None:
        raise AssertionError(f"{ct.id}: no action type {example.action!r}")
    inputs = make_inputs(action.id, example.inputs, example.data)
    requests = action.build(make_context(ct, action.id, example.config), inputs)
    label = f"{ct.id}.{action.id}" + (f" [{example.name}]" if example.name else "")
    problems: list[str] = []
    if len(requests) != len(example.expected):
        problems.append(f"{len(requests)} requests built, {len(example.expected)} expected")
    for n, (req, want) in enumerate(zip(requests, example.expected, strict=False)):
        problems.extend(_compare(req, want, f"request {n}"))
    if problems:
        raise AssertionError(f"{label}: " + "\n  ".join(["differs from the recording:", *problems]))
    return requests


@dataclass(frozen=True)
class ErrorCase:
    """A vendor answer and what ``classify`` must make of it (``outcome=None``: delivered)."""

    response: HttpResponse
    outcome: type[DeliveryError] | None
    category: str | None = None
    retry_after: float | None = None
    message_contains: str | None = None
    id: str = field(default="")


def _case_problems(result: Outcome, case: ErrorCase, where: str) -> list[str]:
    if case.outcome is None:
        return [] if result is None else [f"{where}: expected delivered, got {result!r}"]
    if not isinstance(result, case.outcome):
        return [f"{where}: expected {case.outcome.__name__}, got {result!r}"]
    problems: list[str] = []
    if case.category is not None and result.category != case.category:
        problems.append(f"{where}: category {result.category!r} != {case.category!r}")
    if case.retry_after is not None:
        got = getattr(result, "retry_after", None)
        if got is None or abs(got - case.retry_after) > 1e-6:
            problems.append(f"{where}: retry_after {got!r} != {case.retry_after!r}")
    if case.message_contains and case.message_contains not in result.message:
        problems.append(f"{where}: message {result.message!r} lacks {case.message_contains!r}")
    return problems


def check_error_mapping(
    ct: ConnectorType,
    action_id: str,
    cases: Iterable[ErrorCase],
    request: HttpRequest | None = None,
) -> None:
    """Run ``classify`` on each case's response (for a request built from sample data)."""
    action = ct.action(action_id)
    if action is None:
        raise AssertionError(f"{ct.id}: no action type {action_id!r}")
    if request is None:
        inputs = make_inputs(action_id, [sample_params(action)])
        request = action.build(make_context(ct, action_id, sample_config(ct)), inputs)[0]
    problems: list[str] = []
    for n, case in enumerate(cases):
        where = f"case {case.id or n} (HTTP {case.response.status})"
        result = action.classify(request, case.response)
        for outcome in result if isinstance(result, list) else [result]:
            problems.extend(_case_problems(outcome, case, where))
    if problems:
        raise AssertionError(f"{ct.id}.{action_id}: " + "\n  ".join(["mapping:", *problems]))
