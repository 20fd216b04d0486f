"""Thousands of malformed requests: every answer is a 4xx with a message saying what is wrong, never a 5xx.

Each request is made wrong in one way that guarantees it cannot succeed (bad JSON, a wrong type, an unknown
field, an unknown id, a huge body, a body where none is taken, bad query parameters, a stale If-Match, a bad
token), starting from a valid request for a random route, so the fuzzing reaches every handler.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from hakeeper.api.app import all_routes
from hakeeper.api.routing import MAX_BODY
from tests.api.helpers import Env, sample_cib
from tests.api.samples import SAMPLES, Sample

pytestmark = pytest.mark.timeout(240)

REQUESTS = 5_000
ROUTES = {(r.method, r.path): r for r in all_routes()}
WITH_BODY = [s for s in SAMPLES if ROUTES[(s.method, s.route)].body is not None]
WITHOUT_BODY = [s for s in SAMPLES if ROUTES[(s.method, s.route)].body is None]
WITH_IDS = [s for s in SAMPLES if "{" in s.route]
WRITES = [s for s in SAMPLES if ROUTES[(s.method, s.route)].write]
AUTHED = [s for s in SAMPLES if ROUTES[(s.method, s.route)].role is not None]

Request = tuple[str, str, bytes | None, dict[str, str]]


def junk_text(rng: random.Random, n: int) -> str:
    alphabet = string.printable + "éü€\u0000\u202e😀"
    return "".join(rng.choice(alphabet) for _ in range(n))


def junk_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(7 if depth < 3 else 5)
    if kind == 0:
        return rng.randint(-(2**70), 2**70)
    if kind == 1:
        return rng.random() * 10 ** rng.randint(-5, 300)
    if kind == 2:
        return junk_text(rng, rng.randint(0, 30))
    if kind == 3:
        return rng.choice([None, True, False])
    if kind == 4:
        return []
    if kind == 5:
        return [junk_json(rng, depth + 1) for _ in range(rng.randint(1, 4))]
    return {junk_text(rng, rng.randint(1, 12)): junk_json(rng, depth + 1) for _ in range(rng.randint(1, 4))}


def _body(sample: Sample) -> dict[str, Any]:
    assert isinstance(sample.body, dict)
    return dict(sample.body)


def bad_json(rng: random.Random) -> Request:
    s = rng.choice(WITH_BODY)
    text = json.dumps(s.body)
    cut = rng.choice(
        [
            text[: rng.randint(0, max(0, len(text) - 1))],
            text + rng.choice(["}", ",", "x"]),
            junk_text(rng, rng.randint(1, 80)),
            "{'single': 'quotes'}",
            "\xff\xfe",
        ]
    )
    if cut.strip() in ("", "{}"):  # an empty body means "no fields": make sure it is broken
        cut = "{"
    return s.method, s.url, cut.encode("utf-8", "surrogatepass"), dict(s.headers)


def wrong_type(rng: random.Random) -> Request:
    s = rng.choice([x for x in WITH_BODY if x.body])
    body = _body(s)
    key = rng.choice(sorted(body))
    body[key] = rng.choice([[1, 2], {"x": [None]}]) if not isinstance(body[key], dict) else [junk_json(rng)]
    return s.method, s.url, json.dumps(body).encode(), dict(s.headers)


def unknown_field(rng: random.Random) -> Request:
    s = rng.choice(WITH_BODY)
    body = _body(s)
    body["zz_" + "".join(rng.choice(string.ascii_lowercase) for _ in range(6))] = junk_json(rng)
    return s.method, s.url, json.dumps(body).encode(), dict(s.headers)


def not_an_object(rng: random.Random) -> Request:
    s = rng.choice(WITH_BODY)
    value = rng.choice([junk_json(rng), [junk_json(rng)], junk_text(rng, 5), 7, None])
    if isinstance(value, dict):
        value = [value]
    return s.method, s.url, json.dumps(value).encode(), dict(s.headers)


def random_object(rng: random.Random) -> Request:
    s = rng.choice(WITH_BODY)
    obj = {"q" + junk_text(rng, rng.randint(1, 10)): junk_json(rng) for _ in range(rng.randint(1, 5))}
    return s.method, s.url, json.dumps(obj).encode(), dict(s.headers)


def unknown_id(rng: random.Random) -> Request:
    s = rng.choice(WITH_IDS)
    parts = s.url.split("?")[0].split("/")
    ids = [
        i
        for i, p in enumerate(parts)
        if p in ("n1", "n2", "vip", "httpd", "web", "ping-clone", "web-with-vip")
    ]
    idx = rng.choice(ids)
    parts[idx] = quote("nx-" + junk_text(rng, rng.randint(1, 40)), safe="")
    body = json.dumps(s.body).encode() if s.body is not None else None
    return s.method, "/".join(parts), body, dict(s.headers)


def huge_body(rng: random.Random) -> Request:
    s = rng.choice(WITH_BODY + WITHOUT_BODY)
    size = MAX_BODY + rng.randint(1, 50_000)
    return s.method, s.url, b'{"toml": "' + b"x" * size + b'"}', dict(s.headers)


def body_not_taken(rng: random.Random) -> Request:
    s = rng.choice(WITHOUT_BODY)
    return s.method, s.url, json.dumps(junk_json(rng) or {"x": 1}).encode() + b" ", dict(s.headers)


def bad_query(rng: random.Random) -> Request:
    value = rng.choice(["abc", "-1", "1.5", "", "9" * 40, junk_text(rng, 5)])
    if value == "":
        value = "NaN"
    param = rng.choice(["since", "limit"])
    path = rng.choice(["/v1/events", "/v1/events/stream"])
    if param == "limit" and path == "/v1/events":
        value = rng.choice([value, "0", "100000"])
    return "GET", f"{path}?{param}={quote(value, safe='')}", None, {}


def stale_if_match(rng: random.Random) -> Request:
    s = rng.choice(WRITES)
    body = json.dumps(s.body).encode() if s.body is not None else None
    tag = rng.choice(["0.1", "9.9", "x", junk_text(rng, 8).replace("\n", "")])
    tag = "".join(ch for ch in tag if 32 <= ord(ch) < 127) or "stale"
    if tag.strip('" ') in ("0.7", ""):
        tag = "0.6"
    return s.method, s.url, body, {"If-Match": tag}


def bad_token(rng: random.Random) -> Request:
    s = rng.choice(AUTHED)
    body = json.dumps(s.body).encode() if s.body is not None else None
    value = rng.choice(["Bearer " + junk_text(rng, 30), "Basic abc", "Bearer", "", "bearer  "])
    value = "".join(ch for ch in value if 32 <= ord(ch) < 127)
    return s.method, s.url, body, {**dict(s.headers), "Authorization": value, "X-Fuzz-No-Auth": "1"}


MAKERS: list[tuple[Callable[[random.Random], Request], int]] = [
    (bad_json, 10),
    (wrong_type, 10),
    (unknown_field, 8),
    (not_an_object, 6),
    (random_object, 8),
    (unknown_id, 10),
    (body_not_taken, 5),
    (bad_query, 4),
    (stale_if_match, 5),
    (bad_token, 4),
]


async def test_malformed_requests_get_a_4xx_with_a_message(env: Env) -> None:
    rng = random.Random(20240607)
    makers = [maker for maker, weight in MAKERS for _ in range(weight)]
    admin = env.auth("admin")
    seen: dict[int, int] = {}
    for n in range(REQUESTS):
        maker = huge_body if n % 250 == 0 else rng.choice(makers)
        method, url, body, headers = maker(rng)
        if "X-Fuzz-No-Auth" in headers:
            headers = {k: v for k, v in headers.items() if k != "X-Fuzz-No-Auth"}
        else:
            headers = admin | headers
        resp = await env.client.request(method, url, content=body, headers=headers)
        seen[resp.status_code] = seen.get(resp.status_code, 0) + 1
        assert 400 <= resp.status_code < 500, (
            maker.__name__,
            method,
            url,
            body and body[:200],
            resp.text[:300],
        )
        if method != "HEAD":
            error = resp.json()["error"]
            assert isinstance(error, str) and len(error) > 10, (maker.__name__, url, error)
    assert sum(seen.values()) == REQUESTS
    assert {400, 401, 404, 409, 413} <= set(seen), seen
    assert env.fake.submitted == []  # not one of them changed anything


IDS = [
    "vip",
    "web",
    "fs",
    "httpd",
    "ping",
    "ping-clone",
    "web-with-vip",
    "n1",
    "n2",
    "n3",
    "ghost",
    "a b",
    "x/y",
    "",
    "-",
    "é",
    "cli-prefer-vip",
    "web-clone",
    "0",
]
SCORES: list[object] = [
    0,
    1,
    -1,
    1_000_000,
    -1_000_000,
    10**9,
    "INFINITY",
    "-INFINITY",
    "+INFINITY",
    "inf",
    "12",
    "",
    "red",
]
TEXT: list[object] = [
    "on",
    "off",
    "true",
    "",
    "Stopped",
    "Started",
    "x" * 300,
    "ocf:heartbeat:IPaddr2",
    "systemd:nginx",
    "lsb",
    "a:b:c:d",
    "stonith:fence_xvm",
]


def well_formed(rng: random.Random) -> tuple[str, str, dict[str, Any] | None]:
    """A request of the right shape with values drawn from ids that exist, ids that do not, and odd text."""
    rid, node, other = rng.choice(IDS), rng.choice(IDS), rng.choice(IDS)
    q = quote(rid, safe="") or "x"
    choices: list[tuple[str, str, dict[str, Any] | None]] = [
        (
            "POST",
            "/v1/resources",
            {
                "id": rid,
                "agent": rng.choice(TEXT),
                "group": rng.choice([None, other]),
                "clone": rng.random() < 0.3,
                "promotable": rng.random() < 0.2,
                "params": {rng.choice(["ip", "password", "a b", ""]): rng.choice(TEXT)},
                "operations": [
                    {
                        "name": rng.choice(["monitor", ""]),
                        "interval_ms": rng.choice([0, 10_000, -5]),
                        "timeout_ms": rng.choice([None, 0, 20_000]),
                    }
                ],
            },
        ),
        (
            "PATCH",
            f"/v1/resources/{q}",
            {
                "params": {rng.choice(["ip", "port", "x/y"]): rng.choice([*TEXT, None])},
                "meta": {rng.choice(["target-role", "is-managed"]): rng.choice(TEXT)},
            },
        ),
        ("DELETE", f"/v1/resources/{q}", None),
        (
            "POST",
            f"/v1/resources/{q}/move",
            {"node": node, "lifetime_s": rng.choice([None, 0, -1, 60, 10**12])},
        ),
        ("POST", f"/v1/resources/{q}/ban", {"node": node}),
        ("POST", f"/v1/resources/{q}/clear", {"node": rng.choice([None, node])}),
        ("POST", f"/v1/resources/{q}/cleanup", {"node": rng.choice([None, node])}),
        ("POST", f"/v1/resources/{q}/{rng.choice(['enable', 'disable'])}", None),
        ("POST", "/v1/constraints/location", {"rsc": rid, "node": node, "score": rng.choice(SCORES)}),
        (
            "POST",
            "/v1/constraints/colocation",
            {"rsc": rid, "with_rsc": other, "score": rng.choice(SCORES), "id": rng.choice([None, other])},
        ),
        (
            "POST",
            "/v1/constraints/order",
            {
                "first": rid,
                "then": other,
                "kind": rng.choice(["Mandatory", "Optional", "Serialize", "Often"]),
            },
        ),
        ("DELETE", f"/v1/constraints/{q}", None),
        ("POST", f"/v1/nodes/{quote(node, safe='') or 'x'}/{rng.choice(['standby', 'unstandby'])}", None),
        ("POST", f"/v1/nodes/{quote(node, safe='') or 'x'}/maintenance", {"on": rng.random() < 0.5}),
        (
            "PUT",
            f"/v1/nodes/{quote(node, safe='') or 'x'}/attributes/{rng.choice(['rack', 'a%20b', 'standby'])}",
            {"value": rng.choice(TEXT)},
        ),
        (
            "DELETE",
            f"/v1/nodes/{quote(node, safe='') or 'x'}/attributes/{rng.choice(['rack', 'zone'])}",
            None,
        ),
        ("POST", "/v1/cluster/maintenance", {"on": rng.random() < 0.5}),
        ("GET", f"/v1/resources/{q}/explain", None),
        ("GET", f"/v1/nodes/{quote(node, safe='') or 'x'}", None),
        ("POST", "/v1/simulate", {"ops": [{"op": "delete", "path": f"/configuration/resources/{rid}"}]}),
    ]
    return rng.choice(choices)


async def test_well_formed_requests_with_odd_values_never_get_a_5xx(env: Env) -> None:
    rng = random.Random(99)
    admin = env.auth("admin")
    seen: dict[int, int] = {}
    for n in range(1_500):
        if n % 40 == 0:  # start again from the sample cluster now and then, so the ids mostly exist
            env.fake.set_cib(sample_cib())
        method, url, body = well_formed(rng)
        content = json.dumps(body).encode() if body is not None else None
        resp = await env.client.request(method, url, content=content, headers=admin)
        seen[resp.status_code] = seen.get(resp.status_code, 0) + 1
        assert resp.status_code == 200 or 400 <= resp.status_code < 500, (method, url, body, resp.text[:300])
        if resp.status_code != 200:
            assert len(resp.json()["error"]) > 10
    assert seen.get(200, 0) > 100 and seen.get(400, 0) > 100 and seen.get(404, 0) > 100, seen
