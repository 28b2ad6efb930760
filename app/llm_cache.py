"""A database-backed :class:`engine.augment.ResponseCache` (table ``llm_cache``).

Validated LLM answers are stored with :func:`app.flows.llm_cache_put`, so every analyst of the
same database shares them and a repeated augmentation costs nothing. No streamlit import here.
"""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine

from app import flows
from db.errors import DBError
from engine.augment.cache import CacheRecord

log = logging.getLogger(__name__)


class DBResponseCache:
    """``ResponseCache`` over ``llm_cache``: ``get``/``put`` are one transaction each.

    The key (sha256 of provider, model, prompt version and input hash, from
    :func:`engine.augment.cache_key`) is also stored as ``input_hash``: the input hash itself is
    folded into the key and not handed to ``put``. A put that the database refuses (e.g. a
    response the repository takes for a credential) is logged and skipped: caching must never
    make an augmentation fail. SQLAlchemy engines are thread-safe, so batch augmentation's
    thread pool may share one instance.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.refused = 0

    def get(self, key: str) -> str | None:
        return flows.llm_cache_get(self.engine, key)

    def put(self, key: str, record: CacheRecord) -> None:
        try:
            flows.llm_cache_put(self.engine, key, provider=record.provider, model=record.model,
                                prompt_version=record.prompt_version, response=record.value)
        except (DBError, ValueError) as exc:
            self.refused += 1
            log.warning("llm cache: answer for key %s not stored: %s", key[:12], exc)
