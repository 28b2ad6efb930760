"""Stored benchmark runs (dataset, method, config, result).

Part of :mod:`db.repository` (see its docstring for the guarantees every function keeps).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from db.limits import MAX_NAME_LEN, MAX_SHORT_LEN
from db.models import BenchmarkRun
from db.records import BenchmarkRunRecord
from db.transactions import Db, _write_session, read_session
from db.validators import _check_json_doc, _now, _req_str, _utc


def save_benchmark_run(
    db: Db, *, dataset: str, method: str, config: dict[str, Any], result: dict[str, Any]
) -> int:
    """Store one benchmark run; returns its id."""
    dataset = _req_str("dataset", dataset, MAX_NAME_LEN)
    method = _req_str("method", method, MAX_SHORT_LEN)
    config = _check_json_doc("config", config, dict)
    result = _check_json_doc("result", result, dict)
    with _write_session(db) as session:
        run = BenchmarkRun(
            dataset=dataset, method=method, config=config, result=result, created_at=_now()
        )
        session.add(run)
        session.flush()
        assert run.id is not None
        return run.id


def benchmark_runs(
    db: Db, *, dataset: str | None = None, method: str | None = None
) -> list[BenchmarkRunRecord]:
    """Stored benchmark runs (optionally filtered), oldest first."""
    with read_session(db) as session:
        query = select(BenchmarkRun)
        if dataset is not None:
            query = query.where(BenchmarkRun.dataset == dataset)
        if method is not None:
            query = query.where(BenchmarkRun.method == method)
        return [
            BenchmarkRunRecord(
                id=r.id or 0,
                dataset=r.dataset,
                method=r.method,
                config=dict(r.config),
                result=dict(r.result),
                created_at=_utc(r.created_at),
            )
            for r in session.exec(query.order_by(BenchmarkRun.id))
        ]


__all__ = [
    "benchmark_runs",
    "save_benchmark_run",
]
