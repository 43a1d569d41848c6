"""Bad input: property-based fuzzing of the collect API and of the management API.

The collect API in-process (the real app over a temporary SQLite database) for speed:
random JSON, deep nesting, huge strings, invalid UTF-8 and wrong content types. The
management API with schemathesis, from ``/api/v1/openapi.json``, against a real
``sluice serve --no-workers`` over HTTP on 127.0.0.1. Hostile Liquid templates saved in an
action and run by its test route (in-process, never sent). Nothing may answer 5xx, and
the server must still answer afterwards.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import BaseSchema, Case

from tests.reliability._common import scaled
from tests.support.server import SluiceProcess, base_env, cli, http

pytestmark = pytest.mark.reliability

EXAMPLES = int(scaled(150, 2000))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=30,
)


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


bodies = st.one_of(
    json_values.map(lambda v: ("application/json", _dumps(v))),
    st.dictionaries(st.text(max_size=20), json_values, max_size=8).map(
        lambda d: ("application/json", _dumps({"tealium_account": "acme", **d}))
    ),
    st.integers(0, 200).map(
        lambda d: ("application/json", _dumps({"tealium_account": "acme", "x": _nested(d)}))
    ),
    st.integers(0, 1_200_000).map(
        lambda n: ("application/json", _dumps({"tealium_account": "acme", "s": "x" * n}))
    ),
    st.binary(max_size=200).map(lambda b: ("application/json", b)),
    st.binary(max_size=50).map(
        lambda b: ("application/json", b'{"tealium_account": "acme", "s": "' + b + b'"}')
    ),
    st.tuples(
        st.sampled_from(
            [
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data",
                "application/xml",
                "",
                "application/json; charset=latin-1",
            ]
        ),
        st.binary(max_size=300),
    ),
)


def _dumps(value: Any) -> bytes:
    import json

    return json.dumps(value).encode()


def test_collect_api_never_answers_5xx(client: Any, profile: str) -> None:
    seen: dict[int, int] = {}

    @FUZZ
    @given(
        path=st.sampled_from(["/event", "/bulk-event"]),
        body=bodies,
        bulk_events=st.lists(json_values, max_size=5),
    )
    def check(path: str, body: tuple[str, bytes], bulk_events: list[Any]) -> None:
        content_type, data = body
        if path == "/bulk-event" and bulk_events and content_type == "application/json":
            data = _dumps({"shared": {"tealium_account": "acme"}, "events": bulk_events})
        headers = {"Content-Type": content_type} if content_type else {}
        response = client.post(path, content=data, headers=headers)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, (response.status_code, response.text[:300])

    @FUZZ
    @given(query=st.dictionaries(st.text(max_size=20), st.text(max_size=50), max_size=8))
    def check_get(query: dict[str, str]) -> None:
        response = client.get("/event", params={"tealium_account": "acme", **query})
        assert response.status_code < 500

    check()
    check_get()
    assert client.get("/readyz").status_code == 200
    ok = client.post("/event", json={"tealium_account": "acme"})
    assert ok.status_code == 200
    print(f"\n[reliability] collect fuzz: {EXAMPLES} x 2 examples, statuses {sorted(seen.items())}")


# --- the management API, from its OpenAPI description, against a real server -----------

# Schemathesis's fuzzing phase, per operation; its examples and coverage phases add more.
MANAGEMENT_EXAMPLES = int(scaled(8, 100))
# Never fuzzed; why is in the docstring of the test below.
EXCLUDED = (
    "POST /api/v1/profiles/{account}/{profile}/connectors/{connector_id}/actions/{action_id}/test",
    "GET /api/v1/profiles/{account}/{profile}/reports/live",
)


@dataclass
class Fuzzed:
    """The server under fuzz, its admin token, and the ids of objects made for the fuzzer."""

    server: SluiceProcess
    token: str
    token_id: str
    known: dict[str, str]
    spare: dict[str, str]
    session: requests.Session
    # The JSON body examples of each operation's OpenAPI description, by label.
    examples: dict[str, list[Any]] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    operations: set[str] = field(default_factory=set)

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return http(method, self.server.url + "/api/v1" + path, body, self.token, timeout=30)


def _seed(fuzzed: Fuzzed, suffix: str) -> dict[str, str]:
    """One of each object in acme/main (a connector with an action, two versions); their ids."""

    def made(path: str, body: Any) -> dict[str, Any]:
        status, answer = fuzzed.api("POST", path, body)
        assert status == 201, (path, status, answer)
        return dict(answer)

    main = "/profiles/acme/main"
    source = made(f"{main}/data-sources", {"name": f"Web {suffix}", "platform": "web"})
    feed = made(
        f"{main}/event-feeds",
        {
            "name": f"Purchases {suffix}",
            "conditions": [
                [{"attribute": "tealium_event", "operator": "equals", "value": "purchase"}]
            ],
        },
    )
    attribute = made(
        f"{main}/visitor-attributes",
        {
            "name": f"purchases_{suffix}",
            "scope": "visitor",
            "type": "number",
            "rules": [{"operation": "increment", "value": 1}],
        },
    )
    audience = made(
        f"{main}/audiences",
        {
            "name": f"Buyers {suffix}",
            "conditions": [[{"attribute": f"purchases_{suffix}", "operator": "gte", "value": 2}]],
        },
    )
    # A loopback URL, though nothing is sent: no workers, and the action test is excluded.
    connector = made(
        f"{main}/connectors",
        {"type": "webhook", "name": f"Hook {suffix}", "configuration": {}, "enabled": True},
    )
    cid = connector["id"]
    action = made(
        f"{main}/connectors/{cid}/actions",
        {
            "name": "Send",
            "type": "send_event_data",
            "enabled": True,
            "source": {"event_feed": "all_events"},
            "mappings": [{"parameter": "url", "value": "http://127.0.0.1:9/in"}],
        },
    )
    for note in ("first", "second"):
        made(f"{main}/connectors/{cid}/publish", {"note": note})
        status, _ = fuzzed.api("PATCH", f"{main}/connectors/{cid}", {"name": f"Hook {suffix} 2"})
        assert status == 200
    token = made("/tokens", {"name": f"fuzz {suffix}", "role": "viewer"})
    user = made("/users", {"email": f"{suffix}@example.com", "role": "viewer"})
    return {
        "account": "acme",
        "profile": "main",
        "source_id": source["id"],
        "feed_id": feed["id"],
        "attribute_id": attribute["id"],
        "audience_id": audience["id"],
        "connector_id": cid,
        "action_id": action["id"],
        "version": "1",
        "a": "1",
        "b": "2",
        "visitor_id": "v1",
        "trace_id": "t1",
        "type_id": "webhook",
        "token_id": token["id"],
        "user_id": user["id"],
    }


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """``sluice serve --no-workers`` on a fresh SQLite database, seeded for the fuzzer."""
    folder = tmp_path_factory.mktemp("fuzz")
    database = f"sqlite:///{folder / 'sluice.db'}"
    # Destinations stay restricted to public addresses (the default), though none is sent to.
    env = base_env(SLUICE_ALLOW_PRIVATE_DESTINATIONS="0")
    created = cli(database, "tokens", "create", "--name", "fuzzer", "--role", "admin", env=env)
    token = created.strip().splitlines()[-1]
    server = SluiceProcess(folder, database, args=("--no-workers",), env=env).start()
    # Only ever the loopback server: no proxy from the environment, no redirects followed.
    session = requests.Session()
    session.trust_env = False
    session.max_redirects = 0
    try:
        fuzzed = Fuzzed(server, token, "", {}, {}, session)
        tokens = fuzzed.api("GET", "/tokens")[1]["tokens"]
        fuzzed.token_id = next(t["id"] for t in tokens if t["name"] == "fuzzer")
        for profile in ("main", "spare"):
            assert (
                fuzzed.api("POST", "/profiles", {"account": "acme", "profile": profile})[0] == 201
            )
        fuzzed.known = _seed(fuzzed, "kept")
        fuzzed.spare = _seed(fuzzed, "spare")
        yield fuzzed
    finally:
        session.close()
        server.stop()


@pytest.fixture(scope="module")
def management_api(fuzzed: Fuzzed) -> BaseSchema:
    config = schemathesis.Config.from_dict(
        {
            "headers": {"Authorization": f"Bearer {fuzzed.token}"},
            "request-timeout": 30,
            "max-redirects": 0,
            "generation": {
                "mode": "all",
                "max-examples": MANAGEMENT_EXAMPLES,
                "database": "none",
            },
            "phases": {"stateful": {"enabled": False}},
            "checks": {"enabled": False, "not_a_server_error": {"enabled": True}},
        }
    )
    schema = schemathesis.openapi.from_url(
        fuzzed.server.url + "/api/v1/openapi.json", config=config, timeout=30
    )
    schema.config.update(base_url=fuzzed.server.url)
    fuzzed.examples = _body_examples(schema.raw_schema)

    @schema.hook
    def flatmap_path_parameters(
        context: schemathesis.HookContext, path_parameters: dict[str, Any] | None
    ) -> st.SearchStrategy[dict[str, Any] | None]:
        return _with_real_ids(fuzzed, context, path_parameters)

    @schema.hook
    def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
        assert context.operation is not None
        examples = fuzzed.examples.get(context.operation.label)
        if not examples:
            return st.just(body)
        return st.one_of(st.just(body), st.sampled_from(examples).flatmap(_mutated))

    return schema


def _body_examples(raw: dict[str, Any]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for path, item in raw["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            schema = content.get("application/json", {}).get("schema", {})
            if "$ref" in schema:
                schema = raw["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
            if schema.get("examples"):
                found[f"{method.upper()} {path}"] = list(schema["examples"])
    return found


# What requests can send as JSON: no NaN or infinity (the collect fuzz sends those).
finite_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=30,
)


def _mutated(example: Any) -> st.SearchStrategy[Any]:
    """An example body with one value replaced by random JSON, one key dropped, or keys added.

    The bodies of many operations are free-form objects their handlers validate: the
    schema-driven generator rarely names a real field, so wrong types in real fields come
    from here.
    """
    spots = list(_spots(example))
    replaced = st.tuples(st.sampled_from(spots), finite_json).map(
        lambda spot: _replace(example, spot[0], spot[1])
    )
    keys = [spot for spot in spots if spot and isinstance(spot[-1], str)]
    dropped = (
        st.sampled_from(keys).map(lambda spot: _replace(example, spot, _DROP)) if keys else None
    )
    added = st.dictionaries(st.text(max_size=10), finite_json, min_size=1, max_size=3).map(
        lambda extra: {**example, **extra} if isinstance(example, dict) else extra
    )
    return st.one_of(*(s for s in (replaced, dropped, added) if s is not None))


_DROP = object()


def _spots(value: Any, at: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """The path to every value inside ``value``, the root included."""
    yield at
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, inner in items:
        yield from _spots(inner, (*at, key))


def _replace(value: Any, at: tuple[str | int, ...], new: Any) -> Any:
    if not at:
        return new
    copied: Any = dict(value) if isinstance(value, dict) else list(value)
    head, rest = at[0], at[1:]
    if not rest and new is _DROP:
        del copied[head]
    else:
        copied[head] = _replace(copied[head], rest, new)
    return copied


def _real_ids(fuzzed: Fuzzed, method: str, names: Iterable[str]) -> dict[str, str]:
    """The ids of real objects for these path parameters.

    DELETE gets the spare objects (and profile acme/spare), so the kept ones outlive it.
    """
    names = set(names)
    real = dict(fuzzed.spare if method.upper() == "DELETE" else fuzzed.known)
    if method.upper() == "DELETE" and names == {"account", "profile"}:
        real["profile"] = "spare"
    return {name: real[name] for name in names if name in real}


def _with_real_ids(
    fuzzed: Fuzzed, context: schemathesis.HookContext, generated: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    """Generated path parameters, the ids of real objects, or a mix of both."""
    assert context.operation is not None
    real = _real_ids(fuzzed, context.operation.method, generated or ())
    if not generated or not real:
        return st.just(generated)
    mixed = st.fixed_dictionaries(
        {name: st.sampled_from([generated[name], value]) for name, value in real.items()}
    ).map(lambda chosen: {**generated, **chosen})
    return st.one_of(st.just({**generated, **real}), st.just(generated), mixed)


def _aim_at_real_objects(fuzzed: Fuzzed, case: Case) -> None:
    """Explicit cases (the schema's examples, the coverage phase) go to real objects, unless
    what they vary is a path parameter; the fuzzing phase mixes them in its hook."""
    phase = case.meta.phase if case.meta is not None else None
    if not case.path_parameters or phase is None or phase.name.value == "fuzzing":
        return
    location = getattr(phase.data, "parameter_location", None)
    if getattr(location, "value", location) != "path":
        case.path_parameters.update(_real_ids(fuzzed, case.method, case.path_parameters))


management = schemathesis.pytest.from_fixture("management_api")
for _label in EXCLUDED:
    # On the lazy schema: its filters replace those of the schema the fixture returns.
    _method, _path = _label.split(" ")
    management = management.exclude(method=_method, path=_path)


@pytest.fixture
def node_id_shim(request: pytest.FixtureRequest) -> None:
    """Schemathesis 4.32 reads and renames ``Node._nodeid``, which pytest 9.2 no longer has."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@pytest.mark.usefixtures("node_id_shim")
@pytest.mark.timeout(int(scaled(120, 1800)))
@management.parametrize()
def test_management_api_from_openapi_never_answers_5xx(case: Case, fuzzed: Fuzzed) -> None:
    """Every management operation, generated valid and invalid input: no 5xx, no crash.

    Against a real ``sluice serve --no-workers`` (nothing routes or delivers events), with an
    admin token; path parameters are generated, or the ids of objects made beforehand.
    Excluded (``EXCLUDED``), because they would not stay on this machine or never end:

    - ``POST .../actions/{action_id}/test``: renders the action and, with ``send: true``,
      sends its requests to the vendor at once (``sluice.delivery.trial``); a fuzzed
      connector's base URL or an action's URL can be any host (``http://example.com``).
      It is the only route that uses the HTTP transport; the rest only write to the
      database, and only the delivery workers (not running) send what was written.
    - ``GET .../reports/live``: a Server-Sent Events stream that never ends by itself.

    Revoking the fuzzer's own token would lock it out: DELETE requests get the ids of spare
    objects, never the fuzzer's token.
    """
    # Should a filter ever let one through, fail rather than send it.
    assert case.operation.label not in EXCLUDED, case.operation.label
    _aim_at_real_objects(fuzzed, case)
    if case.path_parameters and case.path_parameters.get("token_id") == fuzzed.token_id:
        case.path_parameters["token_id"] = fuzzed.spare["token_id"]
    response = case.call_and_validate(session=fuzzed.session)
    fuzzed.statuses[response.status_code] += 1
    fuzzed.operations.add(case.operation.label)
    assert fuzzed.server.proc is not None
    assert fuzzed.server.proc.poll() is None, f"the server died:\n{fuzzed.server.log()}"


def test_the_server_survives_the_management_api_fuzz(fuzzed: Fuzzed) -> None:
    status, body = http("GET", fuzzed.server.url + "/healthz", timeout=5)
    assert (status, body) == (200, {"status": "ok"})
    assert fuzzed.server.proc is not None
    assert fuzzed.server.proc.poll() is None
    status, body = fuzzed.api(
        "GET", f"/profiles/acme/main/connectors/{fuzzed.known['connector_id']}"
    )
    assert status == 200, body
    log = fuzzed.server.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[log.index("Traceback") - 500 :][:5000]
    print(
        f"\n[reliability] management API fuzz: {len(fuzzed.operations)} operations, "
        f"{MANAGEMENT_EXAMPLES} examples each, {sum(fuzzed.statuses.values())} requests, "
        f"statuses {sorted(fuzzed.statuses.items())}"
    )


HOSTILE = {
    "infinite loop": "{% for i in (1..100000000) %}{% for j in (1..100000000) %}x{% endfor %}"
    "{% endfor %}",
    "nested loops": "{% for a in (1..1000) %}{% for b in (1..1000) %}{% for c in (1..1000) %}"
    "{{ c }}{% endfor %}{% endfor %}{% endfor %}",
    "huge output": "{% for i in (1..10000) %}" + "x" * 1000 + "{% endfor %}",
    "huge capture": "{% capture s %}{% for i in (1..10000) %}yyyyyyyyyy{% endfor %}{% endcapture %}"
    "{% capture t %}{{ s }}{{ s }}{{ s }}{{ s }}{% endcapture %}{{ t }}{{ t }}",
    "growing assign": "{% assign s = 'x' %}{% for i in (1..60) %}{% assign s = s | append: s %}"
    "{% endfor %}{{ s | size }}",
    "huge join": "{{ (1..99999999) | join: 'xxxxxxxxxxxxxxxxxxxx' }}",
    "huge replace": "{% assign s = 'aaaaaaaaaa' %}"
    "{{ s | replace: 'a', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb' "
    "| replace: 'b', 'cccccccccccccccccccccccccccccc' | replace: 'c', 'dddddddddddddddddddd' }}",
    "dunder class": "{{ order.__class__ }}{{ order.__class__.__mro__ }}",
    "dunder globals": "{{ order['__init__']['__globals__'] }}{{ self.__dict__ }}",
    "include file": "{% include '/etc/passwd' %}",
    "render file": "{% render 'secrets' %}",
    "recursion": "{% assign a = b %}{% for x in a %}{% for y in x %}{{ y }}{% endfor %}"
    "{% endfor %}",
}


# These must end in an error naming the limit, not in a (truncated) request.
LIMITED = {
    "infinite loop",
    "nested loops",
    "huge output",
    "huge capture",
    "growing assign",
    "huge join",
    "huge replace",
}


@pytest.mark.parametrize("name", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_templates_are_stopped_by_the_sandbox(
    api: Any, profile: str, vendor: Any, name: str
) -> None:
    template = HOSTILE[name]
    created = api.post(
        "/profiles", {"account": "acme", "profile": "main"}
    )  # exists already: a 409, ignored
    assert created.status_code < 500
    made = api.post(
        f"{profile}/connectors",
        {"type": "webhook", "name": "T", "configuration": {}, "enabled": True},
    )
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    action = api.post(
        f"{profile}/connectors/{cid}/actions",
        {
            "name": "Hostile",
            "type": "send_custom_request",
            "enabled": True,
            "source": {"event_feed": "all_events"},
            "mappings": [
                {"parameter": "method", "value": "POST"},
                {"parameter": "url", "value": vendor.url + "/in"},
                {"parameter": "body", "template": template},
            ],
        },
    )
    assert action.status_code < 500, action.text
    if action.status_code == 422:  # refused when saved (e.g. an include tag)
        print(f"\n[reliability] template {name}: refused when saved")
        return
    assert action.status_code == 201, action.text
    started = time.perf_counter()
    url = f"{profile}/connectors/{cid}/actions/{action.json()['id']}/test"
    response = api.post(url, {"event": {"order": {"id": 1}}, "send": False})
    took = time.perf_counter() - started
    assert response.status_code < 500, response.text
    assert took < 5, f"the sandbox let it run {took:.1f} s"
    assert len(response.content) < 200_000
    assert "__globals__" not in response.text.replace(template, "")
    assert "<class" not in response.text
    if name in LIMITED:
        assert response.json()["error"], response.text[:300]
    print(f"\n[reliability] template {name}: {response.status_code} in {took * 1000:.0f} ms")
