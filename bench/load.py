"""The app under load (issue 18, item 6): N concurrent real-browser sessions on one server.

Run from the repository root::

    .venv/bin/python -m bench.load --sessions 10 --minutes 5 --db both
    .venv/bin/python -m bench.load --sessions 10 --minutes 5 --db both --auth
    .venv/bin/python -m bench.load --sessions 2 --minutes 0.5 --db sqlite --out /tmp/load
    .venv/bin/python -m bench.load --readme results/load/*.json   # README's Reliability rows

One ``streamlit run app/main.py`` (a fresh EMERFLOW_HOME whose ``workspaces/`` holds the
demo-diseases workspace, a fresh SQLite file or a fresh PostgreSQL database, the knowledge
fixtures of ``tests/fixtures/knowledge`` for the disease and gene lookups), one headless Debian
chromium (Playwright, async API, the flags of ``tests/test_browser.py``) and N browser contexts,
each an independent Streamlit session with its own cookies and websocket. Every session
repeats, until the time is up (an iteration under way when it is up is finished):

========== ==============================================================================
new_item   sidebar "New item" -> the page with its form
lookup     type a disease (OMIM id, ORPHA id or name), Enter -> "Matches (n)", "Resolve and
           fill the form" -> "Resolved: ..." shown
create     a name of its own (the CUI cleared: one item per iteration), "Create item" ->
           "Created ... (#id). Review its features next."
predict    sidebar "Predictions" -> "Top genes for ..." shown
feedback   sidebar "Feedback" -> the page with its gene search box
confirm    four random workspace genes by symbol, "Add as confirmed" -> "Found by search:"
           naming the four
refine     "Refine → Phase I" -> "Refined to Phase I with 4 decision(s)"
========== ==============================================================================

Each step is timed from the action to its answer visible and the script run finished
(``data-test-script-state`` of ``stApp`` back to ``notRunning``). A step that times out, shows
an exception or an error alert, or answers something else is an error (the session reloads
and starts the next iteration). Afterwards the database is read directly: every decision a
session saw acknowledged ("Refined to Phase I with 4 decision(s)") must be stored on its item
with label 1 at Phase I; a missing or different one is a *lost* decision.

``--auth``: ``.streamlit/secrets.toml`` with ``[auth]`` for a real OIDC provider on 127.0.0.1
(``tests/oidc_provider.py``, Authlib JOSE, here serving one user per browser context, chosen
by the provider's own cookie), every session logs in as a different identity
(``load-NN@example.org``); checked: its sidebar says "Signed in as" its own identity, every
item and decision it made is stored under that identity, and (at the end) its own Decision
history table in the browser shows its identity and no other.

The load average before the run (and sampled during it) and the busiest other processes are
written with the figures, since the CPU may be shared. Results: ``<out>/<db>[-auth].json``
(default ``results/load/``). Nothing here is asserted by the test suite except by the smoke
test (``tests/test_load_smoke.py``: 2 sessions, ~30 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

with warnings.catch_warnings():  # authlib.jose's deprecation notice
    warnings.simplefilter("ignore")
    from tests.oidc_provider import OIDCProvider  # noqa: E402
from tests.test_browser import CHROMIUM_ARGS, _free_port  # noqa: E402
from tests.test_browser_auth import _secrets  # noqa: E402

DEFAULT_OUT = REPO / "results" / "load"
KNOWLEDGE = REPO / "tests" / "fixtures" / "knowledge"
WORKSPACE = "demo-diseases"
STEPS = ("new_item", "lookup", "create", "predict", "feedback", "confirm", "refine")
#: what each session types in the disease lookup, in turn (all in the knowledge fixtures)
LOOKUPS = ("OMIM:154700", "Marfan syndrome", "Alzheimer's disease", "retinitis pigmentosa",
           "maple syrup urine disease", "ORPHA:558")
GENES_PER_ITERATION = 4
IDLE_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return !!app && app.getAttribute('data-test-script-state') === 'notRunning'
    && app.getAttribute('data-test-connection-state') === 'CONNECTED'
    && !document.querySelector('[data-testid="stSpinner"]');
}"""
ROW_RE = re.compile(r"^\| \d+ concurrent real-browser sessions")  #: README rows of this bench


# ---- the OIDC provider, one identity per browser context ---------------------------------------
class MultiUserOIDCProvider(OIDCProvider):
    """``tests/oidc_provider.py``'s provider signing in the user named by the browser's
    ``idp_user`` cookie on the provider's host (as a real provider knows who is signed in
    there from its own session cookie); the ID token carries that user's claims."""

    COOKIE = "idp_user"

    def __init__(self, users: dict[str, dict[str, Any]]) -> None:
        super().__init__()
        self.users = users
        outer = self
        base = self.server.RequestHandlerClass

        class Handler(base):  # type: ignore[misc, valid-type]
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                from urllib.parse import parse_qs, urlencode, urlparse

                url = urlparse(self.path)
                if url.path != "/authorize":
                    super().do_GET()
                    return
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                jar = SimpleCookie(self.headers.get("Cookie") or "")
                who = jar[outer.COOKIE].value if outer.COOKIE in jar else ""
                if q.get("client_id") != outer.client_id or who not in outer.users:
                    self._json({"error": "unauthorized_client or unknown user"}, 400)
                    return
                import secrets as _secrets_mod

                code = _secrets_mod.token_urlsafe(16)
                outer.codes[code] = {"nonce": q.get("nonce"), "user": outer.users[who],
                                     "redirect_uri": q.get("redirect_uri")}
                self.send_response(302)
                self.send_header("Location", q["redirect_uri"] + "?" + urlencode(
                    {"code": code, "state": q.get("state", "")}))
                self.end_headers()

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                import base64
                import secrets as _secrets_mod
                from urllib.parse import parse_qs, urlparse

                from authlib.jose import jwt

                if urlparse(self.path).path != "/token":
                    self._json({"error": "not_found"}, 404)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                client_id, client_secret = form.get("client_id"), form.get("client_secret")
                auth = self.headers.get("Authorization") or ""
                if auth.startswith("Basic "):
                    client_id, _, client_secret = base64.b64decode(auth[6:]).decode() \
                        .partition(":")
                ok = client_id == outer.client_id and client_secret == outer.client_secret
                grant = outer.codes.pop(form.get("code", ""), None)
                outer.token_requests.append({"client_ok": ok, "code_ok": grant is not None})
                if not ok or grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
                    self._json({"error": "invalid_grant"}, 400)
                    return
                now = int(time.time())
                claims = {"iss": outer.issuer, "aud": outer.client_id, "iat": now,
                          "exp": now + 3600, "nonce": grant["nonce"], **grant["user"]}
                token = jwt.encode({"alg": "RS256", "kid": outer.kid}, claims, outer.key)
                self._json({"access_token": _secrets_mod.token_urlsafe(16),
                            "token_type": "Bearer", "expires_in": 3600,
                            "scope": "openid profile email", "id_token": token.decode()})

        self.server.RequestHandlerClass = Handler


def identity(i: int) -> dict[str, Any]:
    return {"sub": f"load-sub-{i:02d}", "email": f"load-{i:02d}@example.org",
            "name": f"Load Analyst {i:02d}", "email_verified": True}


# ---- the server --------------------------------------------------------------------------------
@contextlib.contextmanager
def app_server(run_dir: Path, home: Path, database_url: str | None,
               idp: OIDCProvider | None) -> Iterator[tuple[str, subprocess.Popen]]:
    """``streamlit run <repo>/app/main.py`` started in ``run_dir`` on a free 127.0.0.1 port
    (its ``.streamlit/secrets.toml`` configures ``[auth]`` when ``idp`` is given), no LLM;
    yields its URL and process once healthy."""
    port = _free_port()
    if idp is not None:
        (run_dir / ".streamlit").mkdir(parents=True, exist_ok=True)
        (run_dir / ".streamlit" / "secrets.toml").write_text(_secrets(idp, port))
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "EMERFLOW_LLM_BASE_URL",
                        "DATABASE_URL", "EMERFLOW_LLM_MODEL", "STREAMLIT_SERVER_ADDRESS",
                        "STREAMLIT_SERVER_PORT")}
    env.update(EMERFLOW_HOME=str(home), EMERFLOW_LLM_PROVIDER="none",
               EMERFLOW_DATA=str(KNOWLEDGE), EMERFLOW_RESULTS=str(home / "results"),
               PYTHONPATH=str(REPO))
    if database_url:
        env["DATABASE_URL"] = database_url
    log_path = run_dir / "streamlit.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(REPO / "app" / "main.py"),
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=run_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 120
            while True:
                if proc.poll() is not None:
                    raise RuntimeError("streamlit exited: " + log_path.read_text()[-2000:])
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.time() > deadline:
                    raise RuntimeError("streamlit did not become healthy in 120 s")
                time.sleep(0.5)
            yield url, proc
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def ensure_workspace(workspaces_home: Path) -> Path:
    """``workspaces_home/workspaces/demo-diseases`` built (engine defaults) unless it is."""
    from engine.build import workspace_dir
    from engine.workspace_store import workspace_exists

    if not workspace_exists(workspace_dir(WORKSPACE, workspaces_home)):
        from engine.build import build_dataset_workspace
        from engine.config import WorkspaceConfig
        from engine.text.encoder import TextEncoder

        print(f"building {WORKSPACE} under {workspaces_home} (about a minute)...", flush=True)
        workspaces_home.mkdir(parents=True, exist_ok=True)
        build_dataset_workspace(WORKSPACE, config=WorkspaceConfig(dataset=WORKSPACE),
                                encoder=TextEncoder(), home=workspaces_home)
    return workspaces_home / "workspaces"


def gene_symbols(workspaces: Path) -> list[str]:
    """Symbols naming exactly one gene of the workspace (each resolves by symbol)."""
    import pandas as pd

    sym = pd.read_parquet(workspaces / WORKSPACE / "targets.parquet")["symbol"].astype(str)
    counts = sym.value_counts()
    return sorted(s for s in sym if counts[s] == 1 and re.fullmatch(r"[A-Z0-9-]+", s))


# ---- machine load ------------------------------------------------------------------------------
def busy_processes(exclude: set[int], top: int = 8) -> list[dict[str, Any]]:
    """The processes using most CPU over one second (our own excluded): pid, %CPU, command."""
    def ticks() -> dict[int, tuple[int, str]]:
        out: dict[int, tuple[int, str]] = {}
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                stat = (d / "stat").read_text()
                fields = stat[stat.rfind(")") + 2:].split()
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                out[int(d.name)] = (int(fields[11]) + int(fields[12]), " ".join(cmd.split())[:120])
            except (OSError, ValueError, IndexError):
                continue
        return out

    try:
        a = ticks()
        time.sleep(1.0)
        b = ticks()
    except OSError:
        return []
    hz = os.sysconf("SC_CLK_TCK")
    rows = [{"pid": p, "cpu_pct": round(100.0 * (t - a[p][0]) / hz), "cmd": c}
            for p, (t, c) in b.items() if p in a and p not in exclude and t > a[p][0]]
    return sorted(rows, key=lambda r: -r["cpu_pct"])[:top]


def own_pids() -> set[int]:
    """This process and all its descendants."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
                ppid = int(stat[stat.rfind(")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    seen, todo = set(), [os.getpid()]
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.add(p)
            todo.extend(children.get(p, []))
    return seen


class CpuMeter:
    """Core-seconds used during the run by the server, the browsers, this harness and every
    other process of the machine (``/proc``; sampled every few seconds, so a process that
    exits loses at most its last interval)."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.hz = os.sysconf("SC_CLK_TCK")
        self.used = {"server": 0, "browsers": 0, "harness": 0}
        self.prev: dict[int, tuple[int, str]] = {}
        self.machine0 = self.machine = self._machine()
        self.sample()

    @staticmethod
    def _machine() -> tuple[int, int]:
        f = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = f[3] + (f[4] if len(f) > 4 else 0)
        return sum(f[:8]) - idle, sum(f[:8])  # busy, total jiffies

    def _group(self, pid: int) -> str:
        if pid == self.server_pid:
            return "server"
        try:
            cmd = (Path("/proc") / str(pid) / "cmdline").read_bytes()
        except OSError:
            return "harness"
        return "browsers" if b"chrom" in cmd else "harness"

    def sample(self) -> None:
        now: dict[int, tuple[int, str]] = {}
        for pid in own_pids():
            try:
                stat = (Path("/proc") / str(pid) / "stat").read_text()
                f = stat[stat.rfind(")") + 2:].split()
                ticks = int(f[11]) + int(f[12])
            except (OSError, ValueError, IndexError):
                continue
            if pid in self.prev:
                before, group = self.prev[pid]
                self.used[group] += ticks - before
            else:  # counted from its first sample on
                group = self._group(pid)
            now[pid] = (ticks, group)
        self.prev = now
        self.machine = self._machine()

    def report(self, wall_s: float) -> dict[str, Any]:
        busy = (self.machine[0] - self.machine0[0]) / self.hz
        total = (self.machine[1] - self.machine0[1]) / self.hz
        ours = {k: round(v / self.hz, 1) for k, v in self.used.items()}
        return {"wall_s": round(wall_s, 1), "machine_busy_pct": round(100 * busy / total, 1)
                if total else None, "machine_busy_core_s": round(busy, 1),
                **{f"{k}_core_s": v for k, v in ours.items()},
                "other_processes_core_s": round(busy - sum(ours.values()), 1),
                "note": "core-seconds over the measured period; 'other processes' are the "
                        "machine's busy time not used by this run's server, browsers or "
                        "harness (new processes count from their first sample)"}


async def sample_load(samples: list[list[float]], stop: asyncio.Event,
                      meter: CpuMeter | None = None) -> None:
    while not stop.is_set():
        samples.append([round(x, 2) for x in os.getloadavg()])
        if meter is not None:
            meter.sample()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 5)
    if meter is not None:
        meter.sample()


# ---- one browser session -----------------------------------------------------------------------
class StepError(Exception):
    """A step that did not give the expected answer."""


class ServerClock:
    """The time a page waits on the server, read off its websocket: from a ``rerun_script``
    BackMsg sent (widget change, button) to the ``script_finished`` ForwardMsg that ends the
    last run (a run finished early for a rerun keeps waiting). The rest of a step's wall-clock
    time is the browser's (rendering, Playwright) on the same CPUs."""

    def __init__(self) -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        self.back, self.forward = BackMsg, ForwardMsg
        self.open_at: float | None = None
        self.busy = 0.0

    def attach(self, ws) -> None:
        ws.on("framesent", self._sent)
        ws.on("framereceived", self._received)

    def _sent(self, payload: str | bytes) -> None:
        if not isinstance(payload, bytes):
            return
        msg = self.back()
        with contextlib.suppress(Exception):
            msg.ParseFromString(payload)
            if msg.WhichOneof("type") == "rerun_script" and self.open_at is None:
                self.open_at = time.perf_counter()

    def _received(self, payload: str | bytes) -> None:
        if not isinstance(payload, bytes) or len(payload) > 512 or self.open_at is None:
            return
        msg = self.forward()
        with contextlib.suppress(Exception):
            msg.ParseFromString(payload)
            if msg.WhichOneof("type") == "script_finished" and msg.script_finished != \
                    self.forward.ScriptFinishedStatus.FINISHED_EARLY_FOR_RERUN:
                self.busy += time.perf_counter() - self.open_at
                self.open_at = None

    def take(self) -> float:
        busy, self.busy = self.busy, 0.0
        return round(busy, 3)


@dataclass
class SessionLog:
    index: int
    email: str | None
    timings: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STEPS})
    errors: list[dict[str, Any]] = field(default_factory=list)
    items: dict[int, list[str]] = field(default_factory=dict)  #: item -> confirmed gene ids
    iterations: int = 0
    completed: int = 0
    login_s: float | None = None
    signed_in_as: str | None = None
    history_analysts: list[str] | None = None
    warnings: list[str] = field(default_factory=list)
    lookup_suggest: list[float] = field(default_factory=list)  #: Enter -> the matches shown
    server: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STEPS})
    clock: ServerClock | None = None


async def idle(pg, timeout_ms: float) -> None:
    await pg.wait_for_function(IDLE_JS, timeout=timeout_ms, polling=100)


async def app_failures(pg) -> list[str]:
    """Exceptions and error alerts on the page now."""
    texts = []
    for sel in ('[data-testid="stException"]', '[data-testid="stAlertContentError"]'):
        texts.extend(await pg.locator(sel).all_inner_texts())
    return [t.strip()[:300] for t in texts]


async def nav(pg, title: str, heading: str, timeout_ms: float) -> None:
    await pg.locator('[data-testid="stSidebarNavLink"]', has_text=title).first.click()
    await pg.get_by_role("heading", name=heading).first.wait_for(state="visible")


async def run_session(log: SessionLog, browser, url: str, deadline: float, genes: list[str],
                      step_timeout_ms: float, shots: Path, idp: OIDCProvider | None) -> None:
    rng = random.Random(1000 + log.index)
    ctx = await browser.new_context(viewport={"width": 1440, "height": 1000})
    if idp is not None:
        await ctx.add_cookies([{"name": MultiUserOIDCProvider.COOKIE,
                                "value": f"u{log.index:02d}", "url": idp.issuer}])
    pg = await ctx.new_page()
    pg.set_default_timeout(step_timeout_ms)
    log.clock = ServerClock()
    pg.on("websocket", log.clock.attach)
    try:
        await open_app(pg, log, url, step_timeout_ms, login=idp is not None)
        while log.iterations == 0 or time.monotonic() < deadline:  # at least one flow
            await iteration(pg, log, url, rng, genes, step_timeout_ms, shots,
                            login=idp is not None)
        if idp is not None:
            await read_own_history(pg, log, step_timeout_ms)
    finally:
        await ctx.close()


async def open_app(pg, log: SessionLog, url: str, timeout_ms: float, login: bool) -> None:
    await pg.goto(url)
    if login:
        t0 = time.perf_counter()
        signed_in = pg.get_by_text("Signed in as", exact=False).first
        log_in = pg.get_by_role("button", name="Log in", exact=True)
        await signed_in.or_(log_in).first.wait_for(state="visible")
        if await log_in.count():  # not signed in yet (the first visit of this context)
            await log_in.click()
            await signed_in.wait_for(state="visible")
        await idle(pg, timeout_ms)
        if log.login_s is None:
            log.login_s = round(time.perf_counter() - t0, 3)
        shown = (await pg.get_by_text("Signed in as", exact=False).first.inner_text()).strip()
        log.signed_in_as = shown.removeprefix("Signed in as").strip()
    else:
        await pg.get_by_role("heading", name="Workspaces").first.wait_for(state="visible")
        await idle(pg, timeout_ms)


async def iteration(pg, log: SessionLog, url: str, rng: random.Random, genes: list[str],
                    timeout_ms: float, shots: Path, login: bool) -> None:
    it = log.iterations
    log.iterations += 1
    query = LOOKUPS[(log.index + it) % len(LOOKUPS)]
    four = rng.sample(genes, GENES_PER_ITERATION)
    state: dict[str, Any] = {}

    async def new_item() -> None:
        await nav(pg, "New item", "New item", timeout_ms)
        await pg.get_by_role("button", name="Create item", exact=True).first.wait_for(
            state="visible")

    async def lookup() -> None:
        box = pg.get_by_label("Name, synonym or id (UMLS CUI, OMIM:, ORPHA:, MeSH, DOID:)",
                              exact=True).first
        t0 = time.perf_counter()
        await box.fill(query)
        await box.press("Enter")
        await pg.get_by_text("Matches (", exact=False).first.wait_for(state="visible")
        state["lookup_suggest_s"] = round(time.perf_counter() - t0, 3)
        await pg.get_by_role("button", name="Resolve and fill the form", exact=True) \
            .first.click()
        await pg.get_by_text("Resolved: ", exact=False).first.wait_for(state="visible")

    async def create() -> None:
        name = f"Load s{log.index:02d} i{it:03d} {query}"
        await pg.get_by_label("Disease name (required)", exact=True).first.fill(name)
        await pg.get_by_label("UMLS CUI (optional)", exact=True).first.fill("")
        await pg.get_by_role("button", name="Create item", exact=True).first.click()
        ok = pg.get_by_text("Review its features next", exact=False).first
        await ok.wait_for(state="visible")
        m = re.search(r"\(#(\d+)\)\. Review its features next", await ok.inner_text())
        if not m:
            raise StepError(f"no item id in {await ok.inner_text()!r}")
        state["item"] = int(m.group(1))

    async def predict() -> None:
        await nav(pg, "Predictions", "Predictions", timeout_ms)
        await pg.get_by_text("Top genes for", exact=False).first.wait_for(state="visible")

    async def feedback() -> None:
        await nav(pg, "Feedback", "Feedback and phases", timeout_ms)
        await pg.get_by_placeholder("e.g. PDE6B, RHO, 6010").first.wait_for(state="visible")

    async def confirm() -> None:
        box = pg.get_by_placeholder("e.g. PDE6B, RHO, 6010").first
        await box.fill(", ".join(four))
        await box.press("Enter")
        await pg.get_by_role("button", name="Add as confirmed", exact=True).first.click()
        found = pg.get_by_text("Found by search:", exact=False).first
        await found.wait_for(state="visible")
        await idle(pg, timeout_ms)
        text = await found.inner_text()
        ids = dict(re.findall(r"([A-Z0-9-]+) \((\d+)\) confirmed", text))
        if sorted(ids) != sorted(four):
            raise StepError(f"asked to confirm {four}, the page says {text!r}")
        state["genes"] = [ids[s] for s in four]

    async def refine() -> None:
        await pg.get_by_role("button", name="Refine → Phase I", exact=True).first.click()
        await pg.get_by_text(f"Refined to Phase I with {GENES_PER_ITERATION} decision(s)",
                             exact=False).first.wait_for(state="visible")

    for step, fn in (("new_item", new_item), ("lookup", lookup), ("create", create),
                     ("predict", predict), ("feedback", feedback), ("confirm", confirm),
                     ("refine", refine)):
        t0 = time.perf_counter()
        failures: list[str] = []
        if log.clock is not None:
            log.clock.take()
        try:
            await fn()
            await idle(pg, timeout_ms)
            failures = await app_failures(pg)
            if failures:
                raise StepError("the page shows: " + " | ".join(failures))
        except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
            elapsed = time.perf_counter() - t0
            shot = shots / f"s{log.index:02d}_i{it:03d}_{step}.png"
            with contextlib.suppress(Exception):
                await pg.screenshot(path=str(shot), full_page=True)
            with contextlib.suppress(Exception):
                failures = await app_failures(pg)
            log.errors.append({"session": log.index, "iteration": it, "step": step,
                               "kind": type(exc).__name__,
                               "message": str(exc).splitlines()[0][:400] if str(exc) else "",
                               "page_errors": failures,
                               "after_s": round(elapsed, 3), "screenshot": shot.name})
            with contextlib.suppress(Exception):  # a fresh page (a new Streamlit session)
                await open_app(pg, log, url, timeout_ms, login)
            return
        log.timings[step].append(round(time.perf_counter() - t0, 3))
        if log.clock is not None:
            log.server[step].append(log.clock.take())
        warnings = await pg.locator('[data-testid="stAlertContentWarning"]').all_inner_texts()
        log.warnings.extend(w.strip()[:200] for w in warnings if w.strip())
        if step == "create":
            log.items[state["item"]] = []
        if step == "lookup":
            log.lookup_suggest.append(state["lookup_suggest_s"])
    log.items[state["item"]] = state["genes"]
    log.completed += 1


async def read_own_history(pg, log: SessionLog, timeout_ms: float) -> None:
    """The analyst column of the open item's "Decision history" table, as the browser shows
    it (the grid's accessible cells), after the last refinement."""
    with contextlib.suppress(Exception):
        await nav(pg, "Feedback", "Feedback and phases", timeout_ms)
        await idle(pg, timeout_ms)
        await pg.get_by_text("Decision history", exact=True).first.click()
        grid = pg.locator('[data-testid="stExpander"]', has_text="Decision history") \
            .locator('[data-testid="stDataFrame"]').first
        await grid.wait_for(state="visible")
        await pg.wait_for_timeout(500)
        cells = await grid.locator('[role="columnheader"]').all_inner_texts()
        col = next((i for i, c in enumerate(cells) if c.strip() == "analyst"), None)
        if col is None:
            log.history_analysts = []
            return
        rows = grid.locator('[role="row"]')
        seen = []
        for r in range(1, await rows.count()):
            cell = rows.nth(r).locator('[role="gridcell"]')
            if await cell.count() > col:
                seen.append((await cell.nth(col).inner_text()).strip())
        log.history_analysts = seen


# ---- one run -----------------------------------------------------------------------------------
def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    import numpy as np

    return round(float(np.percentile(values, q)), 3)


def stored_decisions(database_url: str, logs: list[SessionLog], auth: bool) -> dict[str, Any]:
    """Compare what every session saw acknowledged with what the database holds."""
    from db import repository as repo
    from db.database import make_engine

    engine = make_engine(database_url)
    acknowledged = lost = wrong_phase = wrong_identity = items_wrong_identity = 0
    lost_detail: list[dict[str, Any]] = []
    try:
        for log in logs:
            for item_id, genes in log.items.items():
                item = repo.get_item(engine, item_id)
                if auth and item.created_by != log.email:
                    items_wrong_identity += 1
                stored = {x.target_id: x for x in repo.interactions(engine, item_id)}
                for g in genes:
                    acknowledged += 1
                    x = stored.get(g)
                    if x is None or x.label != 1:
                        lost += 1
                        lost_detail.append({"session": log.index, "item": item_id, "gene": g,
                                            "stored": None if x is None else x.label})
                        continue
                    if auth and x.analyst != log.email:
                        wrong_identity += 1
                if genes and repo.current_phase(engine, item_id) != 1:
                    wrong_phase += 1
        items_in_db = len(repo.list_items(engine, WORKSPACE))
    finally:
        engine.dispose()
    return {"decisions_acknowledged": acknowledged, "decisions_lost": lost,
            "lost": lost_detail[:20], "items_acknowledged": sum(len(g) > 0 for lg in logs
                                                               for g in lg.items.values()),
            "items_in_database": items_in_db, "items_not_at_phase_I": wrong_phase,
            "decisions_under_another_identity": wrong_identity if auth else None,
            "items_under_another_identity": items_wrong_identity if auth else None}


async def warm_up(browser, url: str, genes: list[str], step_timeout_ms: float, shots: Path,
                  idp: OIDCProvider | None) -> None:
    """One whole flow in a context of its own (session 99), not measured: the knowledge
    lookups, the pages and the caches of a first visit."""
    warm = SessionLog(index=99, email=None)
    timeout = max(step_timeout_ms, 180_000)
    ctx = await browser.new_context()
    if idp is not None:
        idp.users["u99"] = identity(99)
        await ctx.add_cookies([{"name": MultiUserOIDCProvider.COOKIE, "value": "u99",
                                "url": idp.issuer}])
    pg = await ctx.new_page()
    pg.set_default_timeout(timeout)
    try:
        await open_app(pg, warm, url, timeout, idp is not None)
        await iteration(pg, warm, url, random.Random(99), genes, timeout, shots,
                        idp is not None)
    finally:
        await ctx.close()
    if warm.errors:
        raise RuntimeError(f"the warm-up flow failed: {warm.errors[0]}")


async def drive(url: str, sessions: int, seconds: float, genes: list[str],
                step_timeout_ms: float, shots: Path, idp: OIDCProvider | None,
                logs: list[SessionLog], load_samples: list[list[float]], warmup: bool = True,
                server_pid: int | None = None, cpu: dict[str, Any] | None = None) -> float:
    from playwright.async_api import async_playwright

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        raise RuntimeError("chromium is not installed (Debian: apt-get install -y chromium)")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS,
                                          headless=True)
        try:
            # warm-up (not measured): one session loads the encoder, workspace and pages
            if warmup:
                await warm_up(browser, url, genes, step_timeout_ms, shots, idp)

            stop = asyncio.Event()
            meter = CpuMeter(server_pid) if server_pid else None
            sampler = asyncio.create_task(sample_load(load_samples, stop, meter))
            t0 = time.monotonic()
            deadline = t0 + seconds

            async def start(log: SessionLog) -> None:
                await asyncio.sleep(0.5 * log.index)  # users arrive over a few seconds
                await run_session(log, browser, url, deadline, genes, step_timeout_ms, shots,
                                  idp)

            results = await asyncio.gather(*(start(lg) for lg in logs), return_exceptions=True)
            wall = time.monotonic() - t0
            stop.set()
            await sampler
            if meter is not None and cpu is not None:
                cpu.update(meter.report(wall))
            for lg, res in zip(logs, results, strict=True):
                if isinstance(res, BaseException):
                    lg.errors.append({"session": lg.index, "iteration": lg.iterations,
                                      "step": "session", "kind": type(res).__name__,
                                      "message": str(res).splitlines()[0][:400]
                                      if str(res) else "", "page_errors": [], "after_s": None,
                                      "screenshot": None})
        finally:
            await browser.close()
    return wall


def run_once(*, db: str, auth: bool, sessions: int, minutes: float, workspaces: Path,
             step_timeout_s: float, artifacts: Path, warmup: bool = True) -> dict[str, Any]:
    """One server, ``sessions`` browser contexts for ``minutes``; the result document.
    ``warmup``: one unmeasured flow first (the server's caches, the lookups' files)."""
    work = Path(tempfile.mkdtemp(prefix=f"emerflow-load-{db}-"))
    home = work / "home"
    home.mkdir()
    (home / "workspaces").mkdir()  # demo-diseases only: the app's default workspace
    (home / "workspaces" / WORKSPACE).symlink_to(workspaces / WORKSPACE)
    shots = artifacts / f"{db}{'-auth' if auth else ''}"
    shots.mkdir(parents=True, exist_ok=True)
    pg_url = None
    if db == "postgres":
        from db.database import create_database

        pg_url = create_database(postgres_base_url())
        database_url = pg_url
    else:
        database_url = f"sqlite:///{home / 'emerflow.db'}"
    logs = [SessionLog(index=i, email=identity(i)["email"] if auth else None)
            for i in range(sessions)]
    genes = gene_symbols(workspaces)
    load_samples: list[list[float]] = []
    cpu: dict[str, Any] = {}
    before = {"loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
              "busiest_other_processes": busy_processes(own_pids())}
    started = datetime.now(UTC).isoformat(timespec="seconds")
    users = {f"u{i:02d}": identity(i) for i in range(sessions)}
    try:
        with contextlib.ExitStack() as stack:
            idp = stack.enter_context(MultiUserOIDCProvider(users)) if auth else None
            url, proc = stack.enter_context(app_server(work, home, pg_url, idp))
            wall = asyncio.run(drive(url, sessions, minutes * 60, genes, step_timeout_s * 1000,
                                     shots, idp, logs, load_samples, warmup, proc.pid, cpu))
            server_alive = proc.poll() is None
        db_check = stored_decisions(database_url, logs, auth)
    finally:
        if pg_url:
            from db.database import drop_database

            with contextlib.suppress(Exception):
                drop_database(pg_url)
    after = [round(x, 2) for x in os.getloadavg()]
    errors = [e for lg in logs for e in lg.errors]
    by_step: dict[str, int] = {}
    for e in errors:
        by_step[e["step"]] = by_step.get(e["step"], 0) + 1
    steps = {}
    for s in STEPS:
        vals = [v for lg in logs for v in lg.timings[s]]
        steps[s] = {"n": len(vals), "errors": by_step.get(s, 0), "p50_s": _pct(vals, 50),
                    "p95_s": _pct(vals, 95), "max_s": max(vals) if vals else None,
                    "mean_s": round(sum(vals) / len(vals), 3) if vals else None}
    for s in STEPS:
        srv = [v for lg in logs for v in lg.server[s]]
        steps[s]["waiting_on_server"] = {"p50_s": _pct(srv, 50), "p95_s": _pct(srv, 95)}
    sug = [v for lg in logs for v in lg.lookup_suggest]
    steps["lookup"]["of_which_typing_to_matches"] = {"p50_s": _pct(sug, 50),
                                                     "p95_s": _pct(sug, 95)}
    ones = [x[0] for x in load_samples]
    doc: dict[str, Any] = {
        "settings": {"sessions": sessions, "minutes": minutes, "db": db, "auth": auth,
                     "workspace": WORKSPACE, "step_timeout_s": step_timeout_s,
                     "genes_per_iteration": GENES_PER_ITERATION, "lookups": list(LOOKUPS)},
        "started_utc": started,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "chromium": _chromium_version(), "streamlit": _version("streamlit"),
                    "playwright": _version("playwright"), "git": _git_sha(),
                    "uncommitted_in_app_engine_db": _dirty()},
        "load_before": before,
        "loadavg_during_1min": {"min": min(ones, default=None), "max": max(ones, default=None),
                                "mean": round(sum(ones) / len(ones), 2) if ones else None,
                                "samples_every_5s": load_samples},
        "cpu_during_run": cpu,
        "loadavg_after_1_5_15": after,
        "wall_s": round(wall, 1),
        "server_alive_at_end": server_alive,
        "iterations_started": sum(lg.iterations for lg in logs),
        "iterations_completed": sum(lg.completed for lg in logs),
        "errors": len(errors),
        "errors_by_step": by_step,
        "error_details": errors[:50],
        "steps": steps,
        **db_check,
        "warnings_shown": sorted(set(w for lg in logs for w in lg.warnings))[:20],
        "per_session": [{"session": lg.index, "identity": lg.email,
                         "iterations": lg.iterations, "completed": lg.completed,
                         "errors": len(lg.errors), "login_s": lg.login_s,
                         "signed_in_as": lg.signed_in_as,
                         "decision_history_analysts": sorted(set(lg.history_analysts))
                         if lg.history_analysts is not None else None}
                        for lg in logs],
        "step_definitions": STEP_DEFINITIONS,
    }
    if auth:
        read = [lg for lg in logs if lg.history_analysts]
        doc["identity"] = {
            "sessions_shown_own_identity": sum(lg.signed_in_as == lg.email for lg in logs),
            "decision_history_tables_read": len(read),
            "decision_history_own_identity_only": sum(set(lg.history_analysts) == {lg.email}
                                                      for lg in read),
            "decision_history_rows_of_another_identity": sum(
                a != lg.email for lg in read for a in lg.history_analysts),
            "login_s_p50": _pct([lg.login_s for lg in logs if lg.login_s], 50),
        }
    shutil.rmtree(work, ignore_errors=True)
    return doc


STEP_DEFINITIONS = {
    "new_item": "sidebar New item -> the page with its form",
    "lookup": "type the disease (OMIM id, ORPHA id or name), Enter -> 'Matches (n)', "
              "'Resolve and fill the form' -> 'Resolved:' shown",
    "create": "unique name, CUI cleared, 'Create item' -> 'Created … (#id). Review its "
              "features next.'",
    "predict": "sidebar Predictions -> 'Top genes for …'",
    "feedback": "sidebar Feedback -> the page with its gene search box",
    "confirm": "4 gene symbols in the search box, Enter, 'Add as confirmed' -> 'Found by "
               "search:' naming the 4",
    "refine": "'Refine → Phase I' -> 'Refined to Phase I with 4 decision(s)'",
    "timing": "from the action to the answer visible and the script run finished "
              "(stApp data-test-script-state = notRunning), browser and server on one machine",
    "waiting_on_server": "within a step, the time from a rerun request sent on the page's "
                         "websocket to the server's script-finished message (runs finished "
                         "early for a rerun continue the wait); the rest is the browser's",
}


def postgres_base_url() -> str:
    url = os.environ.get("EMERFLOW_TEST_POSTGRES_URL")
    if url:
        return url
    out = subprocess.run(["bash", str(REPO / ".ci" / "postgres.sh")], capture_output=True,
                         text=True, check=True).stdout
    m = re.search(r"EMERFLOW_TEST_POSTGRES_URL=(\S+)", out)
    if not m:
        raise RuntimeError(f".ci/postgres.sh printed no URL: {out!r}")
    os.environ["EMERFLOW_TEST_POSTGRES_URL"] = m.group(1)
    return m.group(1)


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _chromium_version() -> str | None:
    exe = shutil.which("chromium")
    if not exe:
        return None
    with contextlib.suppress(Exception):
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=20)
        return out.stdout.strip() or None
    return None


def _git_sha() -> str | None:
    with contextlib.suppress(Exception):
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                              capture_output=True, text=True, timeout=10).stdout.strip()
    return None


def _dirty() -> list[str] | None:
    """Files of app/, engine/ and db/ that differ from the commit (the server runs them)."""
    with contextlib.suppress(Exception):
        out = subprocess.run(["git", "status", "--porcelain", "--", "app", "engine", "db"],
                             cwd=REPO, capture_output=True, text=True, timeout=10).stdout
        return [ln[3:] for ln in out.splitlines() if ln.strip()]
    return None


# ---- report ------------------------------------------------------------------------------------
def summary(doc: dict[str, Any]) -> str:
    s = doc["settings"]
    lines = [f"== {s['sessions']} sessions × {s['minutes']} min, {s['db']}"
             f"{', login on (' + str(s['sessions']) + ' identities)' if s['auth'] else ''}; "
             f"load average before {doc['load_before']['loadavg_1_5_15']}, during "
             f"{doc['loadavg_during_1min']['mean']} (max {doc['loadavg_during_1min']['max']}) "
             f"on {doc['machine']['cpus']} CPUs",
             f"iterations {doc['iterations_completed']}/{doc['iterations_started']} completed "
             f"in {doc['wall_s']} s; errors {doc['errors']} {doc['errors_by_step'] or ''}; "
             f"decisions acknowledged {doc['decisions_acknowledged']}, lost "
             f"{doc['decisions_lost']}; items at the wrong phase {doc['items_not_at_phase_I']}",
             f"{'step':<9} {'n':>4} {'err':>4} {'p50 s':>7} {'p95 s':>7} {'max s':>7}"
             f"   server p50/p95 s (rerun sent -> script finished)"]
    for step, r in doc["steps"].items():
        def f(v: float | None) -> str:
            return f"{v:7.2f}" if v is not None else "      -"
        srv = r.get("waiting_on_server") or {}
        lines.append(f"{step:<9} {r['n']:>4} {r['errors']:>4} {f(r['p50_s'])} "
                     f"{f(r['p95_s'])} {f(r['max_s'])}   {f(srv.get('p50_s'))} "
                     f"{f(srv.get('p95_s'))}")
    if s["auth"]:
        i = doc["identity"]
        lines.append(f"identity: {i['sessions_shown_own_identity']}/{s['sessions']} sessions "
                     f"signed in as their own; decision history (browser) showing only their "
                     f"own: {i['decision_history_own_identity_only']}/"
                     f"{i['decision_history_tables_read']} read; decisions "
                     f"under another identity {doc['decisions_under_another_identity']}, items "
                     f"{doc['items_under_another_identity']}")
    cpu = doc.get("cpu_during_run") or {}
    if cpu.get("wall_s"):
        w = cpu["wall_s"]
        lines.append(f"CPU during the run (cores on average): server "
                     f"{cpu['server_core_s'] / w:.2f}, browsers {cpu['browsers_core_s'] / w:.2f}"
                     f", harness {cpu['harness_core_s'] / w:.2f}, other processes "
                     f"{cpu['other_processes_core_s'] / w:.2f}; machine busy "
                     f"{cpu['machine_busy_pct']}%")
    busy = doc["load_before"]["busiest_other_processes"]
    if busy:
        lines.append("busiest other processes before: " + "; ".join(
            f"{b['cpu_pct']}% {b['cmd'][:60]}" for b in busy[:4]))
    return "\n".join(lines)


def readme_rows(docs: list[dict[str, Any]]) -> list[str]:
    """README Reliability rows (issue 18 table) for the measured runs."""
    rows = []
    for d in sorted(docs, key=lambda d: (d["settings"]["auth"], d["settings"]["db"] != "sqlite")):
        s, st = d["settings"], d["steps"]
        dbname = "SQLite" if s["db"] == "sqlite" else "PostgreSQL"
        who = (f", login on: {s['sessions']} identities through the test OIDC provider"
               if s["auth"] else "")
        p = " · ".join(f"{k} {st[k]['p50_s']:.1f}/{st[k]['p95_s']:.1f}"
                       for k in STEPS if st.get(k, {}).get("p50_s") is not None)
        now = (f"**{d['errors']} errors**, **{d['decisions_lost']} of "
               f"{d['decisions_acknowledged']} decisions lost**, "
               f"{d['iterations_completed']} flows completed; p50/p95 s: {p}")
        if s["auth"]:
            i = d["identity"]
            now += (f"; {i['sessions_shown_own_identity']}/{s['sessions']} sessions signed in "
                    f"as their own identity, {d['decisions_under_another_identity']} decisions "
                    f"and {d['items_under_another_identity']} items stored under another, the "
                    f"Decision history table in the browser shows only its own identity in "
                    f"{i['decision_history_own_identity_only']}/"
                    f"{i['decision_history_tables_read']} sessions")
        lavg = d["load_before"]["loadavg_1_5_15"][0]
        cpu = d.get("cpu_during_run") or {}
        share = (f"; on average the server used {cpu['server_core_s'] / cpu['wall_s']:.1f} "
                 f"cores, the browsers {cpu['browsers_core_s'] / cpu['wall_s']:.1f}, other "
                 f"processes {cpu['other_processes_core_s'] / cpu['wall_s']:.1f}"
                 if cpu.get("wall_s") else "")
        now += (f" (load average {lavg} before, {d['loadavg_during_1min']['mean']} during, "
                f"{d['machine']['cpus']} cores{share}; `results/load/{s['db']}"
                f"{'-auth' if s['auth'] else ''}.json`)")
        r95 = st["refine"]["p95_s"]
        w95 = (st["refine"].get("waiting_on_server") or {}).get("p95_s")
        now += (f"; refine p95 {r95} s"
                + (f" (of which waiting on the server {w95} s)" if w95 is not None else "")
                + f": target ≤ 3 s {'met' if r95 is not None and r95 <= 3.0 else '**missed**'}")
        rows.append(f"| {s['sessions']} concurrent real-browser sessions on one server, "
                    f"{s['minutes']:g} min, lookup → create → predict → confirm 4 genes → "
                    f"refine, {dbname}{who} (`bench/load.py`) | never measured | {now} |")
    return rows


def update_readme(docs: list[dict[str, Any]], readme: Path = REPO / "README.md") -> None:
    """Replace (or add, at the end of the issue 18 table) the load rows of README's
    Reliability section; nothing else is touched."""
    lines = readme.read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("| probe (issue 18"))
    end = start
    while end + 1 < len(lines) and lines[end + 1].startswith("|"):
        end += 1
    table = [ln for ln in lines[start:end + 1] if not ROW_RE.match(ln)]
    new = table + readme_rows(docs)
    readme.write_text("\n".join(lines[:start] + new + lines[end + 1:]) + "\n")


# ---- CLI ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n")[0],
                                 allow_abbrev=False)
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--db", choices=("sqlite", "postgres", "both"), default="sqlite")
    ap.add_argument("--auth", action="store_true",
                    help="login on: [auth] with the test OIDC provider, one identity a session")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help="folder of the JSON results (default results/load)")
    ap.add_argument("--workspaces-home", type=Path,
                    default=Path(tempfile.gettempdir()) / "emerflow-load-cache" / "home",
                    help="an EMERFLOW_HOME holding (or to build) workspaces/demo-diseases")
    ap.add_argument("--step-timeout", type=float, default=180.0,
                    help="seconds before a step counts as an error")
    ap.add_argument("--artifacts", type=Path, default=REPO / "artifacts" / "load",
                    help="screenshots of failed steps")
    ap.add_argument("--readme", nargs="+", type=Path, metavar="JSON",
                    help="only rewrite README's load rows from these result files")
    args = ap.parse_args(argv)
    if args.readme:
        update_readme([json.loads(p.read_text()) for p in args.readme])
        print("README.md: load rows rewritten from", ", ".join(map(str, args.readme)))
        return 0
    workspaces = ensure_workspace(args.workspaces_home)
    args.out.mkdir(parents=True, exist_ok=True)
    dbs = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    failed = False
    for db in dbs:
        doc = run_once(db=db, auth=args.auth, sessions=args.sessions, minutes=args.minutes,
                       workspaces=workspaces, step_timeout_s=args.step_timeout,
                       artifacts=args.artifacts)
        path = args.out / f"{db}{'-auth' if args.auth else ''}.json"
        path.write_text(json.dumps(doc, indent=1) + "\n")
        print(summary(doc))
        print(f"-> {path}", flush=True)
        failed |= bool(doc["errors"] or doc["decisions_lost"])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
