"""The web dashboard: its page and files, the action preview, the loopback listener, and (when Debian's
chromium is installed and we are root) a real headless browser watching a live three-node cluster."""

from __future__ import annotations

import re

import pytest

from hakeeper.api.dashboard import ASSETS, asset, check_loopback
from tests.api.helpers import Env

pytestmark = pytest.mark.timeout(60)


async def test_the_page_is_served_at_the_root_without_a_token(env: Env) -> None:
    resp = await env.client.get("/")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    html = resp.text
    for table in ("nodes", "resources", "failed", "events"):
        assert f'id="{table}"' in html
    assert 'src="dashboard/dashboard.js"' in html and 'href="dashboard/dashboard.css"' in html
    # nothing from outside: every script and style sheet is one of ours
    for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert ref.removeprefix("dashboard/") in ASSETS, ref


async def test_the_page_forbids_outside_code_and_framing(env: Env) -> None:
    resp = await env.client.get("/")
    csp = resp.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("name", sorted(ASSETS))
async def test_each_file_has_its_media_type(env: Env, name: str) -> None:
    resp = await env.client.get(f"/dashboard/{name}")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == ASSETS[name]
    assert resp.content == asset(name)


@pytest.mark.parametrize("name", ["nope.js", "..%2Fapp.py", "%2E%2E", "dashboard.JS"])
async def test_other_files_are_404_with_a_message(env: Env, name: str) -> None:
    resp = await env.client.get(f"/dashboard/{name}")
    assert resp.status_code == 404
    assert resp.json()["error"]  # a sentence, never a file from elsewhere
    assert (await env.client.get("/dashboard/../auth.py")).status_code == 404


def test_the_script_uses_only_the_api_and_no_outside_address() -> None:
    js = asset("dashboard.js").decode()
    assert "http://" not in js and "https://" not in js
    assert "innerHTML" not in js  # names from the CIB are text, never markup
    for path in ("v1/whoami", "v1/cluster", "v1/resources", "v1/events/stream", "v1/preview"):
        assert f'"{path}' in js
    assert "sessionStorage" in js and "localStorage" not in js


def test_the_data_the_page_needs_has_its_fields_in_the_api_models() -> None:
    """The script reads these fields; if a model renames one the page would show nothing, so say so here."""
    from hakeeper.api.schemas import ClusterView, FailCountView, FailedActionView, NodeView, ResourceView

    js = asset("dashboard.js").decode()
    models = [ClusterView, NodeView, ResourceView, FailCountView, FailedActionView]
    fields = {f for model in models for f in model.__struct_fields__}
    used = set(re.findall(r"\b(?:c|n|r|f)\.([a-z_]+)\b", js))
    assert used <= fields, f"the page reads fields the API does not have: {sorted(used - fields)}"


async def test_preview_predicts_a_move_and_changes_nothing(env: Env) -> None:
    before = env.fake.cib()
    resp = await env.client.post(
        "/v1/preview", json={"action": "move", "rsc": "vip", "node": "n2"}, headers=env.auth("read")
    )
    assert resp.status_code == 200, resp.text
    summary = "\n".join(resp.json()["summary"])
    assert "vip" in summary and "n2" in summary
    assert env.fake.cib() is before and env.fake.submitted == []


async def test_preview_of_standby_moves_the_nodes_resources(env: Env) -> None:
    resp = await env.client.post(
        "/v1/preview", json={"action": "standby", "node": "n1"}, headers=env.auth("operate")
    )
    assert resp.status_code == 200, resp.text
    assert any("vip" in line for line in resp.json()["summary"])
    resp = await env.client.post(
        "/v1/preview", json={"action": "unstandby", "node": "n1"}, headers=env.auth("read")
    )
    assert resp.status_code == 200  # nothing to undo: an empty change, predicted as such


async def test_preview_of_cleanup(env: Env) -> None:
    resp = await env.client.post(
        "/v1/preview", json={"action": "cleanup", "rsc": "vip"}, headers=env.auth("read")
    )
    assert resp.status_code == 200, resp.text
    assert env.fake.submitted == []


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"action": "move", "rsc": "vip"}, 400, "needs 'node'"),
        ({"action": "cleanup"}, 400, "needs 'rsc'"),
        ({"action": "standby"}, 400, "needs 'node'"),
        ({"action": "reboot", "node": "n1"}, 400, "action"),
        ({"action": "move", "rsc": "nope", "node": "n2"}, 404, "nope"),
        ({"action": "standby", "node": "n9"}, 404, "n9"),
    ],
)
async def test_preview_of_a_bad_action_says_what_is_wrong(
    env: Env, body: dict[str, str], status: int, words: str
) -> None:
    resp = await env.client.post("/v1/preview", json=body, headers=env.auth("read"))
    assert resp.status_code == status, resp.text
    assert words in resp.json()["error"]


async def test_preview_needs_a_token(env: Env) -> None:
    resp = await env.client.post("/v1/preview", json={"action": "cleanup", "rsc": "vip"})
    assert resp.status_code == 401


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.30.11", "::1"])
def test_loopback_addresses_are_accepted(host: str) -> None:
    check_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1", "::", "localhost"])
def test_other_addresses_are_refused_with_the_reason(host: str) -> None:
    with pytest.raises(ValueError, match="not a loopback address"):
        check_loopback(host)
