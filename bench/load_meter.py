"""Where the CPU goes during a load run (``bench/load.py``): the machine's busiest processes,
the core-seconds of the server, browsers and harness, the load average, and the time a page
waits on the server read off its websocket."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import Any


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
