"""The shared LLM answer cache (table ``llm_cache``): one read or one write per call.
No streamlit here."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from db import repository as repo


def _clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def llm_cache_get(db: Engine, key: str) -> str | None:
    """The cached answer under ``key``, or None."""
    return repo.llm_cache_get(db, key)


def llm_cache_put(db: Engine, key: str, *, provider: str, model: str, prompt_version: str,
                  response: str) -> None:
    """Cache ``response`` under ``key`` (one transaction; a second put is a no-op).

    Provider, model and prompt version are clipped to the column width; the key is also
    stored as the input hash (the input hash itself is folded into the key).

    Raises:
        db.errors.DBError / ValueError: the database refused the answer (e.g. it looks like a
            credential) or could not store it.
    """
    repo.llm_cache_put(
        db,
        key=key,
        provider=_clip(provider, repo.MAX_SHORT_LEN),
        model=_clip(model, repo.MAX_SHORT_LEN),
        prompt_version=_clip(prompt_version, repo.MAX_SHORT_LEN),
        input_hash=_clip(key, repo.MAX_ID_LEN),
        response=response,
    )
