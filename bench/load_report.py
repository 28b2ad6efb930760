"""The load benchmark's report (``bench/load.py``): percentiles, the printed summary and
README's Reliability rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.load_rig import REPO, ROW_RE, STEPS


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    import numpy as np

    return round(float(np.percentile(values, q)), 3)




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


def verdict(p95: float | None, target_s: float = 3.0) -> str:
    """``met`` or a bold ``missed`` for a p95 against the issue's target."""
    return "met" if p95 is not None and p95 <= target_s else "**missed**"


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
        now += f"; refine p95 {r95} s end to end: target ≤ 3 s {verdict(r95)}"
        if w95 is not None:
            now += (f"; the server's answer (rerun sent → script finished) p95 {w95} s: "
                    f"{verdict(w95)}")
        nice = s.get("browser_nice") or 0
        if nice:
            now += (f" (browsers at nice {nice}: the server's CPU first, as with the "
                    "analysts' browsers on their own machines; end-to-end times include "
                    "10 browsers rendering on the server's 2 cores)")
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
