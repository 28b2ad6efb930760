"""Response caches for LLM augmentation.

The protocol is deliberately tiny so that other stores (e.g. a database table in ``app/``) can
implement it:

* ``get(key) -> str | None``: the stored *validated* answer text (canonical JSON) for ``key``,
  or None.
* ``put(key, record) -> None``: store a :class:`CacheRecord`. Only validated answers are ever
  put, so a reader never needs to re-validate. ``put`` of an existing key may overwrite or be
  ignored (both are fine: the same key means the same question).

Implementations must be safe to call from several threads at once (batch augmentation uses a
thread pool). Keys are 64-char hex strings from :func:`cache_key`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

logger = logging.getLogger(__name__)


def input_hash(payload: Any) -> str:
    """sha256 hex of the canonical JSON of ``payload`` (sorted keys, no whitespace)."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_key(provider: str, model: str, prompt_version: str, input_digest: str,
              endpoint: str = "") -> str:
    """Cache key: sha256 of (provider, model, prompt version, input hash[, endpoint]).

    ``endpoint`` (the provider's :attr:`~engine.augment.providers.LLMProvider.endpoint`, e.g.
    the OpenAI-compatible base URL) keeps the answers of one server from being served as
    another's under the same model name; in-process providers have none, and their keys are
    those of the four fields alone. The fields are joined with a NUL separator so that no two
    different tuples collide.
    """
    for label, value in (
        ("provider", provider),
        ("model", model),
        ("prompt_version", prompt_version),
        ("input_digest", input_digest),
    ):
        if not isinstance(value, str) or not value:
            raise ValueError(f"cache_key: {label} must be a non-empty string")
    fields = (provider, model, prompt_version, input_digest) + ((endpoint,) if endpoint else ())
    raw = "\x00".join(fields)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CacheRecord:
    """One validated LLM answer with its provenance.

    Attributes:
        value: the validated answer as canonical JSON text (what ``get`` returns).
        task: ``suggest_features`` or ``fill_values``.
        provider: provider name (``openai``, ``local``).
        model: model name or path.
        prompt_version: :data:`engine.augment.prompts.PROMPT_VERSION` used.
        created_at: unix time of the answer.
    """

    value: str
    task: str
    provider: str
    model: str
    prompt_version: str
    created_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if not isinstance(self.value, str):
            raise ValueError("CacheRecord.value must be a string")


@runtime_checkable
class ResponseCache(Protocol):
    """Store of validated LLM answers, keyed by :func:`cache_key` (see module docstring)."""

    def get(self, key: str) -> str | None:
        """The stored answer text for ``key``, or None."""
        ...

    def put(self, key: str, record: CacheRecord) -> None:
        """Store a validated answer."""
        ...


class MemoryCache:
    """In-process dict cache (tests, one-off runs)."""

    def __init__(self) -> None:
        self._data: dict[str, CacheRecord] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            rec = self._data.get(key)
        return rec.value if rec is not None else None

    def put(self, key: str, record: CacheRecord) -> None:
        with self._lock:
            self._data[key] = record

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)


class NullCache:
    """A cache that stores nothing (always a miss)."""

    def get(self, key: str) -> str | None:
        return None

    def put(self, key: str, record: CacheRecord) -> None:
        return None


class JsonlCache:
    """Append-only JSON-lines file cache, safe against crashes.

    Each ``put`` appends one line ``{"key": ..., **record}`` and flushes + fsyncs it, so a
    killed batch keeps every answer already written. On load, lines that don't parse (a
    half-written last line after a crash) are skipped; the next ``put`` starts on a fresh line.
    Later lines win for a repeated key.
    """

    def __init__(self, path: Path | str, fsync: bool = True) -> None:
        self.path = Path(path).expanduser()
        self.fsync = fsync
        self._lock = threading.Lock()
        self._data: dict[str, CacheRecord] = {}
        self.skipped_lines = 0
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as fh:
            for raw in fh:
                try:
                    obj = json.loads(raw.decode("utf-8"))
                    key = obj.pop("key")
                    rec = CacheRecord(**obj)
                except (ValueError, TypeError, KeyError, UnicodeDecodeError):
                    self.skipped_lines += 1
                    continue
                if isinstance(key, str):
                    self._data[key] = rec
        if self.skipped_lines:
            logger.warning("%s: skipped %d unreadable line(s)", self.path, self.skipped_lines)

    def get(self, key: str) -> str | None:
        with self._lock:
            rec = self._data.get(key)
        return rec.value if rec is not None else None

    def put(self, key: str, record: CacheRecord) -> None:
        line = json.dumps({"key": key, **asdict(record)}, ensure_ascii=False) + "\n"
        data = line.encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab") as fh:
                # A crash may have left a partial last line without "\n": start a new one.
                if fh.tell() > 0 and not self._ends_with_newline():
                    data = b"\n" + data
                fh.write(data)
                fh.flush()
                if self.fsync:
                    os.fsync(fh.fileno())
            self._data[key] = record

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)
