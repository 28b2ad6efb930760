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
import shlex
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.load_meter import CpuMeter, ServerClock, busy_processes, own_pids, sample_load  # noqa: E402,F401
from bench.load_report import _pct, readme_rows, summary, update_readme  # noqa: E402,F401
from bench.load_rig import (  # noqa: E402,F401
    CHROMIUM_ARGS,
    DEFAULT_OUT,
    GENES_PER_ITERATION,
    IDLE_JS,
    KNOWLEDGE,
    LOOKUPS,
    REPO,
    STEP_DEFINITIONS,
    STEPS,
    WORKSPACE,
    MultiUserOIDCProvider,
    OIDCProvider,
    _chromium_version,
    _dirty,
    _git_sha,
    _version,
    app_server,
    ensure_workspace,
    gene_symbols,
    identity,
    postgres_base_url,
)


# ---- one browser session -----------------------------------------------------------------------
class StepError(Exception):
    """A step that did not give the expected answer."""


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
                server_pid: int | None = None, cpu: dict[str, Any] | None = None,
                browser_nice: int = 0) -> float:
    from playwright.async_api import async_playwright

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        raise RuntimeError("chromium is not installed (Debian: apt-get install -y chromium)")
    if browser_nice:
        exe = niced(exe, browser_nice, shots)
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


def _autogroup() -> str | None:
    """This process's scheduler autogroup and its niceness (Linux; other groups' jobs share
    the cores by group, whatever their own niceness)."""
    with contextlib.suppress(OSError):
        return Path("/proc/self/autogroup").read_text().strip()
    return None


def niced(exe: str, nice: int, folder: Path) -> str:
    """A launcher running ``exe`` (and every process it starts) at niceness ``nice``."""
    launcher = folder / f"chromium-nice{nice}"
    launcher.write_text(f'#!/bin/sh\nexec nice -n {int(nice)} {shlex.quote(exe)} "$@"\n')
    launcher.chmod(0o755)
    return str(launcher)


def run_once(*, db: str, auth: bool, sessions: int, minutes: float, workspaces: Path,
             step_timeout_s: float, artifacts: Path, warmup: bool = True,
             browser_nice: int = 0) -> dict[str, Any]:
    """One server, ``sessions`` browser contexts for ``minutes``; the result document.
    ``warmup``: one unmeasured flow first (the server's caches, the lookups' files);
    ``browser_nice``: the browsers' niceness (> 0: the server's CPU comes first, as when the
    analysts' browsers run on their own machines)."""
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
                                     shots, idp, logs, load_samples, warmup, proc.pid, cpu,
                                     browser_nice))
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
                     "genes_per_iteration": GENES_PER_ITERATION, "lookups": list(LOOKUPS),
                     "browser_nice": browser_nice,
                     "autogroup": _autogroup()},
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
    ap.add_argument("--browser-nice", type=int, default=0, choices=range(0, 20),
                    metavar="0-19", help="run the browsers at this niceness (default 0); > 0 "
                    "gives the server's CPU priority, standing in for analysts' own machines")
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
                       artifacts=args.artifacts, browser_nice=args.browser_nice)
        path = args.out / f"{db}{'-auth' if args.auth else ''}.json"
        path.write_text(json.dumps(doc, indent=1) + "\n")
        print(summary(doc))
        print(f"-> {path}", flush=True)
        failed |= bool(doc["errors"] or doc["decisions_lost"])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
