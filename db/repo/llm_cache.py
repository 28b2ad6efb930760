"""The LLM response cache (keyed by :func:`db.validators.llm_cache_key`).

Part of :mod:`db.repository` (see its docstring for the guarantees every function keeps).
"""

from __future__ import annotations

from sqlmodel import select

from db.limits import MAX_ID_LEN, MAX_KEY_LEN, MAX_RESPONSE_LEN, MAX_SHORT_LEN
from db.models import LLMCache
from db.transactions import Db, _insert, _write_session, read_session
from db.validators import _check_str, _now, _req_str


def llm_cache_get(db: Db, key: str) -> str | None:
    """The cached response for ``key``, or ``None``."""
    with read_session(db) as session:
        return session.exec(select(LLMCache.response).where(LLMCache.key == key)).first()


def llm_cache_put(
    db: Db,
    *,
    key: str,
    provider: str,
    model: str,
    prompt_version: str,
    input_hash: str,
    response: str,
) -> None:
    """Cache ``response`` under ``key`` (see :func:`llm_cache_key`); a second put is a no-op.

    Nothing credential-like is accepted in any field, the response included.
    """
    key = _req_str("key", key, MAX_KEY_LEN)
    provider = _req_str("provider", provider, MAX_SHORT_LEN)
    model = _req_str("model", model, MAX_SHORT_LEN)
    prompt_version = _req_str("prompt_version", prompt_version, MAX_SHORT_LEN)
    input_hash = _req_str("input_hash", input_hash, MAX_ID_LEN)
    response = _check_str("response", response, MAX_RESPONSE_LEN, required=False) or ""
    with _write_session(db) as session:
        stmt = _insert(session, LLMCache.__table__).values(
            key=key,
            provider=provider,
            model=model,
            prompt_version=prompt_version,
            input_hash=input_hash,
            response=response,
            created_at=_now(),
        )
        session.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))


__all__ = [
    "llm_cache_get",
    "llm_cache_put",
]
