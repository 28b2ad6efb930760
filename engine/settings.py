"""Every environment setting of EmerFlow Studio in one typed object (pydantic-settings).

The CLI, the engine and the dashboard read their environment through :func:`get_settings`
only; nothing else in ``engine/``, ``app/`` or ``db/`` reads ``os.environ`` for a setting.
``db/`` never imports this module: it receives the database URL from its callers
(:meth:`Settings.database_url_resolved`).

The object is read once per distinct environment: :func:`get_settings` caches it keyed on the
values of the variables below, so a process reads them once, and a test that changes one with
``monkeypatch.setenv`` gets a fresh object.

Secrets (``OPENAI_API_KEY``) are :class:`pydantic.SecretStr`: never in ``repr`` or logs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The LLM provider when none is configured: works offline, the analyst fills features by hand.
DEFAULT_PROVIDER = "none"


class Settings(BaseSettings):
    """EmerFlow Studio's environment. Field aliases are the environment variable names.

    Attributes:
        home: ``EMERFLOW_HOME``: workspaces, caches, augmentations and the SQLite database.
        database_url: ``DATABASE_URL``: a PostgreSQL URL instead of the SQLite file.
        data: ``EMERFLOW_DATA``: folder holding the real datasets.
        results: ``EMERFLOW_RESULTS``: benchmark result JSON files shown by the dashboard.
        openai_api_key: ``OPENAI_API_KEY``: the operator's key for the operator's endpoint.
        openai_base_url: ``OPENAI_BASE_URL`` (or ``EMERFLOW_LLM_BASE_URL``): the operator's
            OpenAI-compatible endpoint; the key above is only ever sent there.
        llm_provider: ``EMERFLOW_LLM_PROVIDER``: a provider of ``engine.augment.PROVIDERS``
            (``openai``, ``local``, ``none``, ...).
        llm_model: ``EMERFLOW_LLM_MODEL``: model name (or directory for ``local``).
        llm_timeout: ``EMERFLOW_LLM_TIMEOUT``: seconds per request.
        llm_max_retries: ``EMERFLOW_LLM_MAX_RETRIES``: HTTP retries.
        llm_temperature: ``EMERFLOW_LLM_TEMPERATURE``: sampling temperature.
        llm_json_mode: ``EMERFLOW_LLM_JSON_MODE``: ask for a JSON object answer.
        llm_max_tokens: ``EMERFLOW_LLM_MAX_TOKENS``: answer length cap.
        llm_batch_size: ``EMERFLOW_LLM_BATCH_SIZE``: prompts per batch of the local provider.
    """

    model_config = SettingsConfigDict(
        env_ignore_empty=True, extra="ignore", populate_by_name=False, frozen=True,
        case_sensitive=True,
    )

    home: Path = Field(default=Path("~/.emerflow"), validation_alias="EMERFLOW_HOME")
    database_url: SecretStr | None = Field(default=None, validation_alias="DATABASE_URL")
    data: Path | None = Field(default=None, validation_alias="EMERFLOW_DATA")
    results: Path | None = Field(default=None, validation_alias="EMERFLOW_RESULTS")
    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "EMERFLOW_LLM_BASE_URL")
    )
    #: checked against the registered providers by ``engine.augment.LLMSettings``
    llm_provider: str = Field(
        default=DEFAULT_PROVIDER, validation_alias="EMERFLOW_LLM_PROVIDER"
    )
    llm_model: str | None = Field(default=None, validation_alias="EMERFLOW_LLM_MODEL")
    llm_timeout: float = Field(default=60.0, gt=0, validation_alias="EMERFLOW_LLM_TIMEOUT")
    llm_max_retries: int = Field(
        default=2, ge=0, le=10, validation_alias="EMERFLOW_LLM_MAX_RETRIES"
    )
    llm_temperature: float = Field(
        default=0.0, ge=0.0, le=2.0, validation_alias="EMERFLOW_LLM_TEMPERATURE"
    )
    llm_json_mode: bool = Field(default=True, validation_alias="EMERFLOW_LLM_JSON_MODE")
    llm_max_tokens: int = Field(
        default=512, ge=1, le=32768, validation_alias="EMERFLOW_LLM_MAX_TOKENS"
    )
    llm_batch_size: int = Field(
        default=4, ge=1, le=256, validation_alias="EMERFLOW_LLM_BATCH_SIZE"
    )

    @field_validator("home", "data", "results", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("openai_base_url", "llm_model", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() or None if isinstance(value, str) else value

    @field_validator("llm_provider", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    # ---- derived values ------------------------------------------------------------------
    def database_url_resolved(self) -> str:
        """``DATABASE_URL``, else the SQLite file ``<home>/emerflow.db``."""
        if self.database_url is not None and self.database_url.get_secret_value().strip():
            return self.database_url.get_secret_value().strip()
        return f"sqlite:///{self.home / 'emerflow.db'}"

    def results_dir(self, default: Path) -> Path:
        """``EMERFLOW_RESULTS`` or ``default``."""
        return self.results if self.results is not None else default

    # ---- construction from a mapping (secrets, tests) ------------------------------------
    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Settings from ``values`` only (variable name -> value; empty values ignored).

        Raises:
            ValueError: a value is invalid; the message names the variable, never a value.
        """
        clean = {k: v for k, v in _known(values).items()}
        try:
            return _MappingSettings(**clean)
        except Exception as exc:  # pydantic.ValidationError
            raise ValueError(_readable(exc)) from None


def env_names() -> tuple[str, ...]:
    """Every environment variable :class:`Settings` reads (for docs and the README test)."""
    names: list[str] = []
    for info in Settings.model_fields.values():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.extend(str(a) for a in alias.choices)
        elif alias:
            names.append(str(alias))
    return tuple(names)


def _known(values: Mapping[str, Any]) -> dict[str, Any]:
    names = set(env_names())
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in names and value is not None and str(value).strip() != "":
            out[key] = str(value).strip() if not isinstance(value, bool) else value
    return out


def _readable(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return "invalid settings"
    by_alias = {}
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        for a in alias.choices if isinstance(alias, AliasChoices) else [alias]:
            by_alias[str(a)] = name
    parts = []
    for err in errors():
        loc = ".".join(str(x) for x in err.get("loc", ())) or "settings"
        field = by_alias.get(loc, loc)
        parts.append(f"{loc} has an invalid value ({field}: {err.get('msg', 'invalid')})")
    return "; ".join(parts)


class _MappingSettings(Settings):
    """:class:`Settings` built from explicit values only (no environment lookup)."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, *args, **kwargs):  # noqa: ANN001
        return (init_settings,)


_lock = threading.Lock()
_cache: dict[tuple[str | None, ...], Settings] = {}


def get_settings(secrets: Mapping[str, Any] | None = None) -> Settings:
    """The process's settings: the environment, with ``secrets`` (Streamlit's) on top.

    Read once per distinct environment (cached on the variables' values).

    Raises:
        ValueError: a variable has an invalid value (the message names it, never the value).
    """
    names = env_names()
    snapshot = tuple(os.environ.get(n) for n in names)
    extra = _known(secrets or {})
    if extra:
        return Settings.from_mapping({**dict(zip(names, snapshot, strict=True)), **extra})
    with _lock:
        cached = _cache.get(snapshot)
        if cached is None:
            cached = Settings.from_mapping(dict(zip(names, snapshot, strict=True)))
            if len(_cache) > 64:
                _cache.clear()
            _cache[snapshot] = cached
        return cached


def emerflow_home() -> Path:
    """``EMERFLOW_HOME`` (default ``~/.emerflow``)."""
    return get_settings().home


__all__ = ["DEFAULT_PROVIDER", "Settings", "emerflow_home", "env_names",
           "get_settings"]
