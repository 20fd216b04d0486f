"""The web dashboard: its page and files, the action preview, the loopback listener, and (when Debian's
chromium is installed and we are root) a real headless browser watching a live three-node cluster."""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from hakeeper.api.app import build_app, start_http, start_unix
from hakeeper.api.auth import Identity, Role, TokenStore
from hakeeper.api.dashboard import ASSETS, asset
from hakeeper.api.fake import FakeCluster
from hakeeper.api.routing import Services
from hakeeper.cli.localcluster import LocalCluster, free_tcp_port, wait_until
from hakeeper.daemon.config import ConfigError, load_daemon_config
from tests.api.helpers import NOW, Env, sample_cib
from tests.clusters import DUMMY, dummy_bootstrap, running

pytestmark = pytest.mark.timeout(60)
T = TypeVar("T")


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


CONFIG = """
[cluster]
name = "demo"
key_file = "/etc/hakeeper/cluster.key"

[[nodes]]
name = "node1"
id = 1
addresses = ["127.0.0.11:5405"]
"""


@pytest.mark.parametrize("listen", ["127.0.0.1:8080", "127.0.30.11:9000", "[::1]:8080"])
def test_the_daemon_serves_the_dashboard_on_a_loopback_address(listen: str) -> None:
    cfg = load_daemon_config(CONFIG + f'\n[api]\nhttp_listen = "{listen}"\n')
    assert cfg.http_listen is not None and str(cfg.http_listen) == listen
    assert load_daemon_config(CONFIG).http_listen is None  # off unless asked for


@pytest.mark.parametrize(
    ("listen", "words"),
    [
        ("0.0.0.0:8080", "not a loopback address"),
        ("10.0.0.1:8080", "not a loopback address"),
        ("[::]:8080", "not a loopback address"),
        ("localhost:8080", "not an IP address"),
        ("127.0.0.1", "not host:port"),
        ("127.0.0.1:99999", "port"),
    ],
)
def test_other_listen_addresses_are_refused_with_the_reason(listen: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_daemon_config(CONFIG + f'\n[api]\nhttp_listen = "{listen}"\n')
    assert any(p.startswith("api.http_listen: ") and words in p for p in info.value.problems)


async def test_the_loopback_listener_serves_the_page_and_wants_a_token(env: Env) -> None:
    app = build_app(Services(handle=env.fake, tokens=env.store))
    server = await start_http(app, "127.0.0.1", 0)
    try:
        base = "http://{}:{}".format(*server.addresses[0])
        async with httpx.AsyncClient(base_url=base) as client:
            page = await client.get("/")
            assert page.status_code == 200 and 'id="nodes"' in page.text
            assert (await client.get("/v1/cluster")).status_code == 401
            cluster = await client.get("/v1/cluster", headers=env.auth("read"))
            assert cluster.status_code == 200 and cluster.json()["cluster_name"] == "test"
        with pytest.raises(OSError):  # a port in use is an error the daemon can log, not an exit
            await start_http(app, *server.addresses[0])
    finally:
        await server.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="root is admin on the Unix socket only when we are root")
async def test_on_the_unix_socket_the_page_needs_no_token_for_root(env: Env, tmp_path: Path) -> None:
    """What the page does first (whoami without a token) succeeds for root on the local socket."""
    app = build_app(Services(handle=env.fake, tokens=env.store))
    server = await start_unix(app, tmp_path / "api.sock")
    try:
        transport = httpx.AsyncHTTPTransport(uds=str(tmp_path / "api.sock"))
        async with httpx.AsyncClient(transport=transport, base_url="http://local") as client:
            assert (await client.get("/")).status_code == 200
            who = await client.get("/v1/whoami")
            assert who.json() == {"actor": "root (local socket)", "role": "admin"}
    finally:
        await server.stop()


def test_the_demo_prints_each_nodes_dashboard_with_a_working_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hakeeper.api.auth import TOKENS_FILE, TokenStore
    from hakeeper.cli.demo_cmd import _dashboard

    cluster = LocalCluster(tmp_path, ["a", "b"], "", http_port=8123)
    token = cluster.create_token("demo-operator", Role.OPERATE)
    _dashboard(cluster, token)
    out = capsys.readouterr().out
    for name in ("a", "b"):
        assert f"http://{cluster.addresses[name]}:8123/#token={token}" in out
        store = TokenStore(cluster.node_dir(name) / TOKENS_FILE)
        assert store.verify(token) == Identity("demo-operator", Role.OPERATE)
    assert 'http_listen = "' not in cluster.config_text  # per node, written when each starts


# --- the browser test: real headless Chromium on a live three-node cluster --------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
]
BOOTSTRAP = dummy_bootstrap("browser")
# What the page shows, read from the DOM: each node's state and the nodes each resource is on.
PAGE_STATE = """
const rows = (sel) => Array.from(document.querySelectorAll(sel));
return {
  nodes: Object.fromEntries(rows('#nodes tbody tr').map((r) => [r.dataset.node, r.dataset.state])),
  resources: Object.fromEntries(rows('#resources tbody tr').map((r) => [r.dataset.rsc, r.dataset.nodes])),
  buttons: rows('td.ops button').filter((b) => b.offsetParent !== null).length,
  events: rows('#events li').map((li) => li.textContent),
  connection: document.getElementById('connection').dataset.state,
  identity: document.getElementById('identity').textContent,
  loaded: window.hakeeperTestMark || null,
};
"""


def _browser_missing() -> str | None:
    if os.geteuid() != 0:
        return "the browser test runs as root (Chromium's --no-sandbox, loopback addresses per node)"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} is missing: scripts/setup.sh installs Debian's chromium and chromium-driver"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (the dev extra: pip install -e '.[dev]')"
    return None


@pytest.fixture
def browser() -> Iterator[Any]:
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _page(driver: Any) -> dict[str, Any]:
    return dict(driver.execute_script(PAGE_STATE))


def _wait(driver: Any, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = 60) -> None:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: check(_page(d)))
    except TimeoutException:
        raise AssertionError(f"the page never showed {what}; it shows {_page(driver)}") from None


def _operate_move(driver: Any, rsc: str, node: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    row = driver.find_element(By.CSS_SELECTOR, f'#resources tr[data-rsc="{rsc}"]')
    Select(row.find_element(By.TAG_NAME, "select")).select_by_value(node)
    row.find_element(By.XPATH, ".//button[text()='move']").click()
    ok = driver.find_element(By.ID, "confirm-ok")
    WebDriverWait(driver, 30).until(lambda d: ok.is_enabled())
    plan = driver.find_element(By.ID, "confirm-plan").text
    assert rsc in plan and node in plan, plan
    driver.save_screenshot(str(ARTIFACTS / "dashboard-confirm-move.png"))
    ok.click()


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=2.0)
    except httpx.HTTPError:
        return False
    return True


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_the_dashboard_follows_a_failover_live_in_chromium(tmp_path: Path, browser: Any) -> None:
    if not DUMMY.exists():
        pytest.skip("Debian's resource-agents is not installed (ocf:heartbeat:Dummy)")
    cluster = LocalCluster(tmp_path, ["n1", "n2", "n3"], BOOTSTRAP, http_port=free_tcp_port())
    operator = cluster.create_token("dashboard-operator", Role.OPERATE)
    reader = cluster.create_token("dashboard-reader", Role.READ)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        cluster.start_all()
        assert wait_until(lambda: len(running(cluster, "web")) == 1, 60), cluster.logs()
        (active,) = running(cluster, "web")
        viewer = next(n for n in cluster.nodes if n != active)
        url = cluster.dashboard_url(viewer)
        # the viewer's daemon may still be starting (its API comes up after its message layer)
        assert wait_until(lambda: _answers(url), 60), cluster.logs()

        # the read role sees the cluster but no action buttons
        browser.get(url + "#token=" + reader)
        _wait(
            browser,
            lambda p: "dashboard-reader (read)" in p["identity"] and p["resources"].get("web") == active,
            f"web on {active} to the read token",
        )
        assert _page(browser)["buttons"] == 0
        assert "token=" not in browser.current_url  # taken out of the address bar, kept in the tab

        # an operator sees every node online and the resource where it runs, with buttons to act
        browser.get(url + "#token=" + operator)
        _wait(
            browser,
            lambda p: (
                "dashboard-operator (operate)" in p["identity"]
                and p["nodes"] == {n: "online" for n in cluster.nodes}
                and p["resources"].get("web") == active
                and p["connection"] == "live"
            ),
            f"three online nodes and web on {active}",
        )
        assert _page(browser)["buttons"] > 0
        browser.execute_script("window.hakeeperTestMark = 'before the kill';")
        browser.save_screenshot(str(ARTIFACTS / "dashboard-before-failover.png"))

        cluster.kill(active)
        _wait(
            browser,
            lambda p: (
                p["nodes"].get(active) in ("offline", "unclean")
                and p["resources"].get("web") not in (None, "", active)
            ),
            f"{active} offline and web running elsewhere",
        )
        shown = _page(browser)
        assert shown["loaded"] == "before the kill", "the page was reloaded instead of updated live"
        assert shown["resources"]["web"] in set(cluster.nodes) - {active}
        assert wait_until(lambda: running(cluster, "web") == {shown["resources"]["web"]}, 30)
        assert any(active in line and "lost" in line for line in shown["events"]), shown["events"]
        browser.save_screenshot(str(ARTIFACTS / "dashboard-after-failover.png"))

        # the operator moves it on: the dialog shows the predicted transition, then the change commits
        new = shown["resources"]["web"]
        (spare,) = set(cluster.nodes) - {active, new}
        _operate_move(browser, "web", spare)
        _wait(browser, lambda p: p["resources"].get("web") == spare, f"web moved to {spare}")
        assert wait_until(lambda: running(cluster, "web") == {spare}, 30), cluster.logs()
        assert "committed" in browser.find_element("id", "banner").text
    finally:
        cluster.stop_all()


class ServedFake:
    """The API app over a ``FakeCluster``, served on loopback HTTP from an event loop in its own thread,
    so a synchronous browser can watch it while the test changes the cluster (on that loop)."""

    def __init__(self, tmp_path: Path) -> None:
        self.fake = FakeCluster(sample_cib(), cluster_name="fake", now=NOW)
        self.store = TokenStore(tmp_path / "tokens.json")
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        app = build_app(Services(handle=self.fake, tokens=self.store))
        self.server = self.call(start_http(app, "127.0.0.1", 0))
        self.url = "http://{}:{}/".format(*self.server.addresses[0])

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def do(self, fn: Callable[[], object]) -> None:
        async def on_loop() -> None:
            fn()

        self.call(on_loop())

    def close(self) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.mark.timeout(120)
def test_the_page_shows_failures_countdowns_node_states_and_follows_events(
    tmp_path: Path, browser: Any
) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    ARTIFACTS.mkdir(exist_ok=True)
    served = ServedFake(tmp_path)
    try:
        token = served.store.create("viewer", Role.READ, NOW)
        served.do(lambda: served.fake.set_member("n2", online=False, unclean=True))
        served.do(lambda: served.fake.set_member("n3", online=True, fenced_at=NOW - 5000))
        browser.get(served.url + "#token=" + token)
        _wait(browser, lambda p: p["nodes"].get("n2") == "unclean", "n2 unclean")
        text = browser.find_element("id", "main").text
        # the failed monitor with its exit reason, the fail count with the time left before it expires
        failed = browser.find_element("css selector", '#failed tr[data-rsc="vip"]').text
        assert "monitor" in failed and "not running" in failed and "n1" in failed
        vip = browser.find_element("css selector", '#resources tr[data-rsc="vip"]')
        assert vip.get_attribute("data-failed") is not None and "Started" in vip.text and "failed" in vip.text
        assert "1 on n1 (threshold 3) expires in 8 min" in text
        assert "fenced" in browser.find_element("css selector", '#nodes tr[data-node="n3"]').text
        countdown = browser.find_element("css selector", "[data-expires]")
        first = countdown.text
        WebDriverWait(browser, 10).until(lambda d: countdown.text != first)  # it counts down by itself

        # a change the cluster announces: the page re-reads at once (its own safety re-read is 30 s away)
        served.do(lambda: served.fake.set_member("n3", online=False))
        served.do(lambda: served.fake.publish("node", "lost", node="n3"))
        _wait(browser, lambda p: p["nodes"].get("n3") == "offline", "n3 offline after the event", timeout=10)
        assert any("n3: lost" in line for line in _page(browser)["events"])
        browser.save_screenshot(str(ARTIFACTS / "dashboard-failures.png"))
    finally:
        served.close()
