"""LLM providers behind one small interface: OpenAI-compatible HTTP, in-process local, none.

Every provider turns ``(system, user)`` into the model's raw answer text via
:meth:`LLMProvider.complete_json`. Validation, repair and caching live in
:mod:`engine.augment.service`; providers only talk to the model and translate every failure
into :class:`AugmentationError` with a readable message that never contains the API key.

The endpoint, key and redaction rules live in :mod:`engine.augment.endpoints` and the
in-process model in :mod:`engine.augment.local`; both are re-exported here (the local one
lazily, as it builds on :class:`LLMProvider`: no import cycle).
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from engine.augment.endpoints import OPENAI_API_ENDPOINT as OPENAI_API_ENDPOINT
from engine.augment.endpoints import SECRET_QUERY_PARAMS as SECRET_QUERY_PARAMS
from engine.augment.endpoints import _redact as _redact
from engine.augment.endpoints import key_for_endpoint as key_for_endpoint
from engine.augment.endpoints import normalize_endpoint as normalize_endpoint
from engine.augment.endpoints import redact_text as redact_text
from engine.augment.endpoints import redact_url as redact_url
from engine.augment.endpoints import same_endpoint as same_endpoint

if TYPE_CHECKING:
    from engine.augment.local import LocalProvider as LocalProvider
    from engine.augment.local import _JSONClosedStop as _JSONClosedStop
    from engine.augment.local import json_object_closed as json_object_closed

logger = logging.getLogger(__name__)

#: A prompt: (system message, user message).
Prompt = tuple[str, str]

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"


class AugmentationError(RuntimeError):
    """Feature augmentation failed; ``str(err)`` is a readable one-line reason for the user."""


# Settings ------------------------------------------------------------------------------------


#: Names of the providers (keys of :data:`engine.augment.registry.PROVIDERS`, which maps them
#: to their classes); a test keeps the two equal.
PROVIDER_NAMES: tuple[str, ...] = ("openai", "local", "none", "knowledge")

@dataclass(frozen=True)
class LLMSettings:
    """How to reach the LLM. ``api_key`` is never shown in ``repr`` nor in :meth:`public_dict`.

    Attributes:
        provider: key of :data:`PROVIDERS` (``openai``, ``local``, ``none``).
        model: model name (OpenAI-compatible servers) or model directory (``local``; for
            ``transformers serve`` the served directory path, as given to the server).
        base_url: OpenAI-compatible endpoint (``http://127.0.0.1:8000/v1``); None = OpenAI.
        api_key: secret; optional when ``base_url`` points to a local server.
        timeout_s: per-request timeout in seconds.
        max_retries: retries of the HTTP client on timeouts, 429, 5xx, connection errors.
        temperature: sampling temperature (0 = greedy).
        json_mode: ask for ``response_format={"type": "json_object"}`` (falls back once
            without it if the server rejects the field).
        max_tokens: cap on generated tokens per answer.
        batch_size: prompts generated together by the ``local`` provider (on 2 CPU cores
            SmolLM2-135M fills 16 movie items in 65 s at 4, 35 s at 16).
    """

    provider: str = "none"
    model: str = DEFAULT_OPENAI_MODEL
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 60.0
    max_retries: int = 2
    temperature: float = 0.0
    json_mode: bool = True
    max_tokens: int = 512
    batch_size: int = 4

    def __post_init__(self) -> None:
        if self.provider not in PROVIDER_NAMES:
            raise ValueError(
                f"unknown LLM provider {self.provider!r}; use one of {sorted(PROVIDER_NAMES)}"
            )
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError("LLM model must be a non-empty string")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        if not 0 <= self.max_retries <= 10:
            raise ValueError(f"max_retries must be in 0..10, got {self.max_retries}")
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError(f"temperature must be in 0..2, got {self.temperature}")
        if not 1 <= self.max_tokens <= 32768:
            raise ValueError(f"max_tokens must be in 1..32768, got {self.max_tokens}")
        if not 1 <= self.batch_size <= 256:
            raise ValueError(f"batch_size must be in 1..256, got {self.batch_size}")
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://, got "
                             f"{redact_url(self.base_url)!r}")

    @classmethod
    def from_env(
        cls,
        secrets: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> LLMSettings:
        """Settings from ``secrets`` (e.g. Streamlit secrets; wins) then the environment.

        The environment is read through :func:`engine.settings.get_settings` (``env`` replaces
        it, for tests). Variables: ``EMERFLOW_LLM_PROVIDER`` (default ``none``),
        ``EMERFLOW_LLM_MODEL``, ``OPENAI_BASE_URL`` (or ``EMERFLOW_LLM_BASE_URL``),
        ``OPENAI_API_KEY``, ``EMERFLOW_LLM_TIMEOUT``, ``EMERFLOW_LLM_MAX_RETRIES``,
        ``EMERFLOW_LLM_TEMPERATURE``, ``EMERFLOW_LLM_JSON_MODE``, ``EMERFLOW_LLM_MAX_TOKENS``,
        ``EMERFLOW_LLM_BATCH_SIZE``. ``overrides`` (None values ignored) win over both.
        For ``provider=local`` without a model, the prepared SmolLM2 directory is used.

        Raises:
            ValueError: a variable has an invalid value (the message names the variable,
                never the key's value).
        """
        from engine.settings import Settings, get_settings

        if env is None:
            app = get_settings(secrets)
        else:
            app = Settings.from_mapping({**env, **dict(secrets or {})})
        return cls.from_settings(app, **overrides)

    @classmethod
    def from_settings(cls, app: Any, **overrides: Any) -> LLMSettings:
        """LLM settings from an :class:`engine.settings.Settings` (``overrides`` win).

        A ``base_url`` override other than the operator's endpoint gets only an ``api_key``
        override, never the operator's key (:func:`key_for_endpoint`).
        """
        kwargs: dict[str, Any] = {
            "provider": app.llm_provider,
            "base_url": app.openai_base_url,
            "timeout_s": app.llm_timeout,
            "max_retries": app.llm_max_retries,
            "temperature": app.llm_temperature,
            "json_mode": app.llm_json_mode,
            "max_tokens": app.llm_max_tokens,
            "batch_size": app.llm_batch_size,
        }
        if app.llm_model:
            kwargs["model"] = app.llm_model
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        kwargs.update({k: v for k, v in overrides.items() if v is not None})
        kwargs["api_key"] = key_for_endpoint(
            kwargs.get("base_url"), overrides.get("api_key"), operator_url=app.openai_base_url,
            operator_key=app.openai_api_key.get_secret_value() if app.openai_api_key else None)
        provider = kwargs.get("provider", "none")
        if "model" not in kwargs:
            if provider == "local":
                from engine.augment.local_model import SMOLLM2_DIRNAME

                kwargs["model"] = str(app.home / "models" / SMOLLM2_DIRNAME)
            elif provider == "none":
                kwargs["model"] = "none"
        return cls(**kwargs)

    def with_overrides(self, **overrides: Any) -> LLMSettings:
        """A copy with the non-None ``overrides`` applied."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def public_dict(self) -> dict[str, Any]:
        """All settings except the API key (safe to log, show or store)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "api_key"}
        out["base_url"] = redact_url(self.base_url) or None
        out["api_key_set"] = bool(self.api_key)
        return out


# Interface -----------------------------------------------------------------------------------


class LLMProvider(ABC):
    """A model that answers a (system, user) prompt with (ideally) a JSON object as text.

    Attributes:
        name: provider key (``openai``, ``local``, ``none``); part of cache keys.
        model: model name or path; part of cache keys.
        endpoint: where the requests go (normalized base URL; ``""`` in process); part of
            cache keys, so answers from one server are never served as another's.
        enabled: False for :class:`NoneProvider` (the analyst fills features by hand).
        batch_size: >1 when :meth:`complete_json_many` batches in one forward pass (local);
            batch augmentation then sends chunks instead of using threads.
    """

    name: str = "abstract"
    model: str = ""
    endpoint: str = ""
    enabled: bool = True
    batch_size: int = 1

    @abstractmethod
    def complete_json(self, system: str, user: str) -> str:
        """The model's raw answer text.

        Raises:
            AugmentationError: the request failed (after the client's own retries).
        """

    def complete_json_many(self, prompts: Sequence[Prompt]) -> list[str | AugmentationError]:
        """Answers for several prompts, in order; a failed one is its AugmentationError.

        Default: one :meth:`complete_json` call after the other.
        """
        out: list[str | AugmentationError] = []
        for system, user in prompts:
            try:
                out.append(self.complete_json(system, user))
            except AugmentationError as exc:
                out.append(exc)
        return out

    def describe(self) -> dict[str, str]:
        """Provenance fields: ``{"provider": ..., "model": ...}``."""
        return {"provider": self.name, "model": self.model}


class NoneProvider(LLMProvider):
    """No LLM: the analyst fills features by hand. The service returns empty results."""

    name = "none"
    model = "none"
    enabled = False

    def __init__(self, settings: LLMSettings | None = None) -> None:
        self.settings = settings

    def complete_json(self, system: str, user: str) -> str:
        raise AugmentationError(
            "no LLM provider configured (provider 'none'): fill features by hand"
        )


class OpenAIProvider(LLMProvider):
    """Any OpenAI-compatible chat-completions endpoint (OpenAI, ``transformers serve``, vLLM…).

    Uses the official ``openai`` client, whose own retries (``max_retries``, exponential
    backoff honoring ``Retry-After``) cover timeouts, 429, 5xx and connection errors. With
    ``json_mode`` it sends ``response_format={"type": "json_object"}``; if the server rejects
    the request with HTTP 400/422, it retries once without and stops asking for it.
    """

    name = "openai"

    def __init__(self, settings: LLMSettings, client: Any | None = None) -> None:
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - openai is a core dependency
            raise AugmentationError(f"the openai package is not installed: {exc}") from None
        self._openai = openai
        self.settings = settings
        self.model = settings.model
        self.endpoint = normalize_endpoint(settings.base_url) or OPENAI_API_ENDPOINT
        self._json_mode = settings.json_mode
        self._lock = threading.Lock()
        if client is not None:
            self._client = client
            return
        key = settings.api_key
        if not key:
            if settings.base_url is None:
                raise AugmentationError(
                    "OPENAI_API_KEY is not set: set it (or OPENAI_BASE_URL for a local "
                    "OpenAI-compatible server), or choose provider 'local' or 'none'"
                )
            key = "not-needed"  # local servers ignore it; the client requires a value
        self._client = openai.OpenAI(
            api_key=key,
            base_url=settings.base_url,
            timeout=settings.timeout_s,
            max_retries=settings.max_retries,
        )

    @property
    def json_mode_active(self) -> bool:
        """Whether requests still carry ``response_format`` (False after a server rejected it)."""
        return self._json_mode

    def _where(self) -> str:
        return redact_url(self.settings.base_url) or "the OpenAI API"

    def _create(self, system: str, user: str, json_mode: bool) -> Any:
        kwargs: dict[str, Any] = {
            "model": self.settings.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "temperature": self.settings.temperature,
            "max_tokens": self.settings.max_tokens,
        }
        if json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        return self._client.chat.completions.create(**kwargs)

    def complete_json(self, system: str, user: str) -> str:
        try:
            try:
                response = self._create(system, user, self._json_mode)
            except (self._openai.BadRequestError, self._openai.UnprocessableEntityError):
                if not self._json_mode:
                    raise
                logger.info("server rejected response_format; retrying once without JSON mode")
                response = self._create(system, user, False)
                with self._lock:
                    self._json_mode = False
        except self._openai.OpenAIError as exc:
            raise AugmentationError(self._describe_error(exc)) from None
        except ValueError:  # the client could not decode the body (JSONDecodeError)
            raise AugmentationError(
                f"LLM server at {self._where()} returned a malformed (non-JSON) response"
            ) from None
        except Exception as exc:  # noqa: BLE001 - never let a raw client error escape
            raise AugmentationError(
                _redact(
                    f"LLM request to {self._where()} failed: {type(exc).__name__}: "
                    f"{_clip(str(exc))}",
                    self.settings.api_key,
                )
            ) from None
        return self._content(response)

    def _content(self, response: Any) -> str:
        choices = getattr(response, "choices", None)
        if not choices:
            kind = "non-JSON" if isinstance(response, str | bytes) else "unexpected"
            raise AugmentationError(
                f"LLM server at {self._where()} returned a {kind} response (no choices)"
            )
        message = getattr(choices[0], "message", None)
        content = getattr(message, "content", None)
        if not isinstance(content, str) or not content.strip():
            raise AugmentationError(f"LLM server at {self._where()} returned an empty answer")
        return content

    def _describe_error(self, exc: Exception) -> str:
        o = self._openai
        where = self._where()
        retries = self.settings.max_retries
        after = f" after {retries} retr{'y' if retries == 1 else 'ies'}" if retries else ""
        if isinstance(exc, o.APITimeoutError):
            msg = f"LLM request to {where} timed out ({self.settings.timeout_s:g}s){after}"
        elif isinstance(exc, o.APIConnectionError):
            msg = f"could not connect to the LLM server at {where}{after}"
        elif isinstance(exc, o.AuthenticationError):
            msg = f"LLM server at {where} rejected the API key (HTTP 401): check OPENAI_API_KEY"
        elif isinstance(exc, o.RateLimitError):
            msg = f"LLM server at {where} is rate limiting requests (HTTP 429){after}"
        elif isinstance(exc, o.APIStatusError):
            detail = _short_detail(exc)
            msg = f"LLM server at {where} returned HTTP {exc.status_code}{after}" + (
                f": {detail}" if detail else ""
            )
        elif isinstance(exc, o.APIResponseValidationError):
            msg = f"LLM server at {where} returned a malformed (non-JSON) response"
        else:
            msg = f"LLM request to {where} failed: {type(exc).__name__}: {_clip(str(exc))}"
        return _redact(msg, self.settings.api_key)


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short_detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        err = body.get("error", body.get("detail", body))
        if isinstance(err, Mapping):
            err = err.get("message", err)
        return _clip(str(err))
    if isinstance(body, str):
        return _clip(body)
    return _clip(getattr(exc, "message", "") or "")


#: Names defined in :mod:`engine.augment.local` and importable from here.
_LOCAL_NAMES = frozenset({"LocalProvider", "json_object_closed", "_JSONClosedStop"})


def __getattr__(name: str) -> Any:
    """The local provider's names, imported on first use (:mod:`engine.augment.local` builds
    on this module, so importing it here at module level would be a cycle)."""
    if name in _LOCAL_NAMES:
        from engine.augment import local

        return getattr(local, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names, the lazily imported local ones included."""
    return sorted(set(globals()) | _LOCAL_NAMES)
