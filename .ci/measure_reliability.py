"""Measure the figures of README's "Reliability" section (issue 13).

    .venv/bin/python .ci/measure_reliability.py [--rounds 20] [--kills 20]

Uses a throw-away EMERFLOW_HOME with the demo-diseases workspace (built here, short training),
a SQLite file and, when EMERFLOW_TEST_POSTGRES_URL is set, a fresh PostgreSQL database.
Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ANALYSTS = 4


def _together(n: int, work):
    barrier = threading.Barrier(n)

    def task(i: int):
        barrier.wait()
        try:
            return work(i)
        except Exception as exc:  # noqa: BLE001 - counted
            return exc

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(task, range(n)))


def concurrent_analysts(url: str, ws, rounds: int) -> dict:
    import numpy as np

    from app import flows
    from db import repository as repo
    from db.database import init_db, make_engine

    engines = [make_engine(url) for _ in range(ANALYSTS)]
    init_db(engines[0])
    lost = 0
    wrong_embeddings = 0
    errors = 0
    created_per_round = []
    try:
        for r in range(rounds):
            item = flows.new_item(engines[0], ws, name=f"Round {r}", features={
                "disease_type": "disease", "disease_class": "Musculoskeletal Diseases"})
            s0 = flows.predict_item(engines[0], ws, item.id)
            t = s0.prediction.targets["target_id"].tolist()
            picks = {i: [(t[20 + 7 * i + r % 5], 1), (t[24 + 7 * i + r % 5], 0)]
                     for i in range(ANALYSTS)}
            out = _together(ANALYSTS, lambda i, item=item, picks=picks: flows.confirm_and_refine(
                engines[i], ws, item.id, picks[i], analyst=f"a{i}", expected_phase=0))
            errors += sum(isinstance(o, Exception) for o in out)
            stored = {x.target_id: x.label for x in repo.interactions(engines[0], item.id)}
            wanted = {k: v for p in picks.values() for k, v in p}
            lost += sum(1 for k, v in wanted.items() if stored.get(k) != v)
            emb = [e for e in repo.embeddings(engines[0], item.id)
                   if e.phase == repo.current_phase(engines[0], item.id)][0]
            expect = ws.refine(s0.prediction.embedding, dict(item.raw_features),
                               sorted(wanted.items()))
            if not np.allclose(np.frombuffer(emb.vector, dtype=np.float32), expect,
                               rtol=1e-5, atol=1e-6):
                wrong_embeddings += 1
            # four analysts create the same new item at once
            made = _together(ANALYSTS, lambda i, r=r: flows.new_item(
                engines[i], ws, name=f"Same name {r}", features={}))
            created_per_round.append(sum(not isinstance(m, Exception) for m in made))
    finally:
        for e in engines:
            e.dispose()
    return {"rounds": rounds, "analysts": ANALYSTS, "decisions": rounds * ANALYSTS * 2,
            "decisions_lost": lost, "embeddings_missing_a_decision": wrong_embeddings,
            "refinement_errors": errors,
            "concurrent_creates_items_made": sorted(set(created_per_round))}


SAVE_LOOP = """
import sys
from pathlib import Path
from engine.workspace_store import load_workspace, save_workspace
ws = load_workspace(Path(sys.argv[1]))
print("ready", flush=True)
while True:
    save_workspace(ws, Path(sys.argv[2]))
"""


def kill_during_saves(src: Path, work: Path, kills: int, encoder) -> dict:
    import shutil

    from engine.workspace_store import load_workspace

    dst = work / "kill" / src.name
    shutil.copytree(src, dst)
    rng = random.Random(0)
    unloadable = 0
    durations = []
    for _ in range(kills):
        proc = subprocess.Popen([sys.executable, "-c", SAVE_LOOP, str(src), str(dst)],
                                stdout=subprocess.PIPE, cwd=REPO)
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        delay = rng.uniform(0.05, 1.5)
        durations.append(delay)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        try:
            load_workspace(dst, encoder)
        except Exception:  # noqa: BLE001 - counted
            unloadable += 1
    return {"kills": kills, "unloadable_after_kill": unloadable,
            "kill_delay_s": [round(min(durations), 2), round(max(durations), 2)]}


def key_to_foreign_hosts() -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    from test_security import SERVER_KEY, RecordingLLM

    from app.llm import LLMChoice, resolve_settings, test_connection

    with RecordingLLM() as operator, RecordingLLM() as foreign:
        env = {"EMERFLOW_LLM_PROVIDER": "openai", "OPENAI_API_KEY": SERVER_KEY,
               "OPENAI_BASE_URL": operator.base_url, "EMERFLOW_LLM_MAX_RETRIES": "0",
               "EMERFLOW_LLM_TIMEOUT": "5", "EMERFLOW_LLM_MODEL": "m"}
        host = foreign.base_url.split("//", 1)[1]
        typed = [foreign.base_url, foreign.base_url + "/", foreign.base_url.upper().replace(
            "HTTP://", "http://"), f"http://user:pw@{host}", foreign.base_url + "?api-key=x",
            foreign.base_url.replace("127.0.0.1", "localhost")]
        for url in typed:
            for secrets in (None, {"OPENAI_API_KEY": SERVER_KEY}):
                try:
                    test_connection(resolve_settings(LLMChoice(provider="openai",
                                                               base_url=url),
                                                     secrets=secrets, env=env))
                except Exception:  # noqa: BLE001 - unreachable forms are fine
                    pass
        test_connection(resolve_settings(LLMChoice(), env=env))
        leaked = sum(1 for a in foreign.auth if a and SERVER_KEY in a)
        return {"requests_to_typed_urls": len(foreign.auth), "server_key_sent": leaked,
                "operator_endpoint_got_key": operator.auth[-1] == f"Bearer {SERVER_KEY}"}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--kills", type=int, default=20)
    args = p.parse_args()
    home = Path(tempfile.mkdtemp(prefix="emerflow-reliability-"))
    os.environ["EMERFLOW_HOME"] = str(home)
    from engine.build import build_dataset_workspace, workspace_dir
    from engine.config import MetaConfig, WorkspaceConfig
    from engine.text.encoder import TextEncoder

    encoder = TextEncoder()
    cfg = WorkspaceConfig(dataset="demo-diseases", meta=MetaConfig(epochs=10))
    ws = build_dataset_workspace("demo-diseases", config=cfg, encoder=encoder, home=home)
    result: dict = {"key": key_to_foreign_hosts()}
    result["sqlite"] = concurrent_analysts(f"sqlite:///{home / 'reliability.db'}", ws,
                                           args.rounds)
    pg = os.environ.get("EMERFLOW_TEST_POSTGRES_URL")
    if pg:
        from db.database import create_database, drop_database

        url = create_database(pg)
        try:
            result["postgresql"] = concurrent_analysts(url, ws, args.rounds)
        finally:
            drop_database(url)
    result["kill_9_during_save"] = kill_during_saves(workspace_dir("demo-diseases", home),
                                                     home, args.kills, encoder)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
