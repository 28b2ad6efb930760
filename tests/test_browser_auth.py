"""Login that cannot be skipped, and no request to a host the page did not intend (issue 18).

A real headless Chromium (Playwright, Debian's ``chromium``) against a freshly started
``streamlit run app/main.py`` with ``[auth]`` configured for a real OIDC provider on 127.0.0.1
(``tests/oidc_provider.py``, built with Authlib):

* every page URL (and an unknown one), each opened in a fresh browser context before anyone
  has signed in, shows the login page and nothing of the page; nothing is written;
* signed in, an item whose name and CUI carry Markdown images makes the browser request no
  host but the app and the provider (every request of the context is recorded).

Skipped when chromium is not installed (the test never downloads a browser).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.oidc_provider import OIDCProvider
from tests.test_browser import (
    CHROMIUM_ARGS,
    TIMEOUT_MS,
    _chromium,
    _free_port,
    click,
    fill,
    idle,
    see,
    select,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
#: Every page of the app by URL path ("" is the default page), plus one that does not exist.
PAGE_PATHS = ["", "workspace", "new_item", "features", "predictions", "feedback", "benchmark",
              "settings", "no_such_page"]
EVIL = "evil.example"


def _secrets(idp: OIDCProvider, port: int) -> str:
    doc = {"auth": {"redirect_uri": f"http://127.0.0.1:{port}/oauth2callback",
                    "cookie_secret": "c" * 32, "client_id": idp.client_id,
                    "client_secret": idp.client_secret,
                    "server_metadata_url": idp.metadata_url}}
    lines = []
    for section, values in doc.items():
        lines.append(f"[{section}]")
        lines.extend(f"{k} = {json.dumps(v)}" for k, v in values.items())
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def auth_server(tmp: Path, home: Path, idp: OIDCProvider) -> Iterator[str]:
    """A fresh ``streamlit run <repo>/app/main.py`` started in ``tmp`` (its
    ``.streamlit/secrets.toml`` configures ``[auth]``); yields its URL once healthy."""
    port = _free_port()
    (tmp / ".streamlit").mkdir(exist_ok=True)
    (tmp / ".streamlit" / "secrets.toml").write_text(_secrets(idp, port))
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "EMERFLOW_LLM_BASE_URL",
                        "DATABASE_URL", "EMERFLOW_LLM_MODEL", "STREAMLIT_SERVER_ADDRESS")}
    env.update(EMERFLOW_HOME=str(home), EMERFLOW_LLM_PROVIDER="none",
               EMERFLOW_RESULTS=str(home / "results"), PYTHONPATH=str(REPO))
    log_path = tmp / "streamlit.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(REPO / "app" / "main.py"),
             "--server.port", str(port)], cwd=tmp, env=env, stdout=log,
            stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 90
            while True:
                assert proc.poll() is None, log_path.read_text()[-2000:]
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                assert time.time() < deadline, "streamlit did not become healthy in 90 s"
                time.sleep(0.5)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextlib.contextmanager
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    exe = _chromium()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def recording_context(b, allowed: set[str]) -> tuple[object, list[str]]:
    """A fresh context whose every request URL is recorded; any request to a host outside
    ``allowed`` is recorded and aborted (the test never reaches the internet)."""
    ctx = b.new_context(viewport={"width": 1440, "height": 1000})
    seen: list[str] = []

    def route(r) -> None:
        seen.append(r.request.url)
        if urlparse(r.request.url).netloc in allowed:
            r.continue_()
        else:
            r.abort()

    ctx.route("**/*", route)
    ctx.on("websocket", lambda ws: seen.append(ws.url))
    return ctx, seen


def _shown(pg, selector: str) -> str:
    """The visible text of the elements matching ``selector``, without word joiners."""
    return " ".join(pg.locator(selector).all_inner_texts()).replace("\u2060", "")


def _items_in(home: Path) -> int:
    total = 0
    for db in home.rglob("*.db"):
        with contextlib.closing(sqlite3.connect(db)) as con:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
            if "items" in tables:
                total += con.execute("SELECT COUNT(*) FROM items").fetchone()[0]
    return total


def test_every_page_url_of_a_fresh_server_shows_the_login_page(tmp_path: Path) -> None:
    """Before the fix, right after a start and until someone signed in, ``/settings``,
    ``/benchmark``, ``/new_item``... rendered (and wrote) without a login."""
    home = tmp_path / "home"
    home.mkdir()
    with OIDCProvider() as idp, auth_server(tmp_path, home, idp) as url, browser() as b:
        app_host = urlparse(url).netloc
        shown: dict[str, list[str]] = {}
        for path in PAGE_PATHS:
            ctx, seen = recording_context(b, {app_host})
            try:
                pg = ctx.new_page()
                pg.set_default_timeout(TIMEOUT_MS)
                pg.goto(f"{url}/{path}")
                pg.get_by_role("button", name="Log in", exact=True).wait_for(state="visible")
                idle(pg)
                pg.wait_for_timeout(1000)  # anything a page would stream after the gate
                idle(pg)
                shown[path] = pg.locator("h1").all_inner_texts()
                assert shown[path] == ["EmerFlow Studio"], (path, shown[path])
                body = pg.locator("body").inner_text()
                assert "Log in with your organisation's account" in body, path
                assert pg.locator('[data-testid="stSidebarNavLink"]').count() == 0, path
                assert pg.locator("input, textarea").count() == 0, (path, body[:500])
                assert pg.get_by_role("button").all_inner_texts() == ["Log in"], path
                assert {urlparse(u).netloc for u in seen} == {app_host}, seen
            finally:
                ctx.close()
    assert _items_in(home) == 0
    print(json.dumps({"login page shown": shown}))


def test_markdown_in_names_and_cuis_fetches_nothing_external(tmp_path: Path, demo_home: Path
                                                             ) -> None:
    """Signed in through the OIDC provider, an item name and a CUI carrying Markdown images
    are shown literally, and the browser requests no host but the app's and the provider's."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "workspaces").symlink_to(demo_home / "workspaces")
    name = f"Injected ![n](http://{EVIL}/name.png) [click](http://{EVIL}/x) dysplasia"
    bad_cui = f"![c](http://{EVIL}/cui.png)"
    with OIDCProvider() as idp, auth_server(tmp_path, home, idp) as url, browser() as b:
        allowed = {urlparse(url).netloc, urlparse(idp.issuer).netloc}
        ctx, seen = recording_context(b, allowed)
        try:
            pg = ctx.new_page()
            pg.set_default_timeout(TIMEOUT_MS)
            pg.goto(url)
            click(pg, "Log in")  # -> the provider -> /oauth2callback -> the app, signed in
            see(pg, "Signed in as ana@example.org")  # on the default page: Workspace
            idle(pg)
            select(pg, "Workspace", "demo-diseases (synthetic)")
            click(pg, "Use this workspace")
            see(pg, "Now working in demo-diseases")
            pg.locator('[data-testid="stSidebarNavLink"]', has_text="New item").first.click()
            pg.get_by_role("heading", name="New item").first.wait_for(state="visible")
            idle(pg)
            fill(pg, "Disease name (required)", name)
            fill(pg, "UMLS CUI (optional)", bad_cui)
            fill(pg, "Description", "A disorder of Wnt signaling affecting bone density.")
            click(pg, "Create item")
            see(pg, "UMLS CUI must be")
            # the error shows the typed text literally (an invisible word joiner breaks the
            # URL's autolink): no image, no link
            assert bad_cui in _shown(pg, '[data-testid="stAlertContentError"]')
            assert pg.locator(f'img[src*="{EVIL}"], a[href*="{EVIL}"]').count() == 0
            fill(pg, "UMLS CUI (optional)", "C1234567")
            click(pg, "Create item")
            see(pg, "Review its features next")
            assert name in _shown(pg, '[data-testid="stAlertContentSuccess"]')  # literally
            for title, heading in (("Features", "Features"), ("Predictions", "Predictions")):
                pg.locator('[data-testid="stSidebarNavLink"]', has_text=title).first.click()
                pg.get_by_role("heading", name=heading).first.wait_for(state="visible")
                idle(pg)
            see(pg, "Top genes for")
            pg.wait_for_timeout(1000)
            assert pg.locator(f'img[src*="{EVIL}"], a[href*="{EVIL}"]').count() == 0
        finally:
            ctx.close()
    hosts = {urlparse(u).netloc for u in seen}
    assert hosts <= allowed, sorted(hosts - allowed)
    assert not any(EVIL in u for u in seen), [u for u in seen if EVIL in u]
    print(json.dumps({"requests": len(seen), "hosts": sorted(hosts)}))
