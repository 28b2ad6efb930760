"""LLM settings for the dashboard: the operator's endpoint and key, per-session overrides.

The operator's endpoint (``OPENAI_BASE_URL``) and key (``OPENAI_API_KEY``) come only from the
environment or ``.streamlit/secrets.toml`` (passed in as ``secrets``), read through
:mod:`engine.settings`. A base URL typed in the dashboard never receives the operator's key: it
is sent only the key typed with it in the same session (kept in session memory, never stored).
Credentials inside URLs are masked wherever a URL is shown. No streamlit import here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.augment import (
    PROVIDERS,
    AugmentationError,
    LLMProvider,
    LLMSettings,
    make_provider,
)
from engine.augment.providers import redact_text, redact_url, same_endpoint
from engine.settings import Settings, get_settings

PROVIDER_NAMES: tuple[str, ...] = tuple(PROVIDERS)
PROVIDER_HELP = {
    "openai": "Any OpenAI-compatible server (OpenAI, transformers serve, vLLM) via base URL",
    "local": "An in-process transformers model directory (offline, slow on CPU)",
    "none": "No LLM: the analyst fills the features by hand",
}


def _secret_dict(secrets: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in dict(secrets or {}).items():
        if isinstance(value, (str, int, float, bool)):
            out[str(key)] = value
    return out


def _app_settings(secrets: Mapping[str, Any] | None,
                  env: Mapping[str, str] | None) -> Settings:
    if env is None:
        return get_settings(_secret_dict(secrets))
    return Settings.from_mapping({**env, **_secret_dict(secrets)})


def default_provider(secrets: Mapping[str, Any] | None = None,
                     env: Mapping[str, str] | None = None) -> str:
    """``EMERFLOW_LLM_PROVIDER`` (secrets, then environment); ``none`` when unset, as in the
    CLI and the engine (a fresh install works without any LLM)."""
    return _app_settings(secrets, env).llm_provider


@dataclass(frozen=True)
class LLMChoice:
    """What the analyst picked on the Settings page.

    ``api_key`` is the key the analyst typed for *their own* ``base_url`` in this session:
    only ever sent to that URL, never stored, shown or logged (not in ``repr``).
    """

    provider: str | None = None
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)


def resolve_settings(choice: LLMChoice | None = None,
                     secrets: Mapping[str, Any] | None = None,
                     env: Mapping[str, str] | None = None) -> LLMSettings:
    """Settings from secrets + environment, with the analyst's non-empty choices on top.

    A ``choice.base_url`` other than the operator's ``OPENAI_BASE_URL`` gets the key typed with
    it (``choice.api_key``) or none: the operator's key only goes to the operator's endpoint
    (the engine's one rule, :func:`engine.augment.providers.key_for_endpoint`, which the CLI's
    ``--base-url`` goes through too).

    Raises:
        ValueError: an invalid value (the message never contains a key).
    """
    choice = choice or LLMChoice()
    app = _app_settings(secrets, env)
    provider = (choice.provider or "").strip() or app.llm_provider
    overrides: dict[str, Any] = {"provider": provider}
    if (choice.model or "").strip():
        overrides["model"] = choice.model.strip()
    typed_url = (choice.base_url or "").strip() or None
    typed_key = (choice.api_key or "").strip() or None
    if typed_key and (typed_url is None or same_endpoint(typed_url, app.openai_base_url)):
        raise ValueError("A key typed here is only used with a base URL typed here; the "
                         "operator's endpoint uses the operator's key.")
    # A user-chosen endpoint: never the operator's key; only the key typed with it.
    base = LLMSettings.from_settings(app, provider=provider, base_url=typed_url,
                                     api_key=typed_key)
    if provider == "none":
        return base.with_overrides(model="none")
    if provider == "openai" and "model" not in overrides and base.model == "none":
        overrides["model"] = LLMSettings().model
    return base.with_overrides(**overrides)


def settings_summary(settings: LLMSettings) -> dict[str, str]:
    """Displayable settings: the API key only as ``set`` / ``not set``."""
    pub = settings.public_dict()
    return {
        "provider": str(pub["provider"]),
        "model": str(pub["model"]),
        "base URL": redact_url(str(pub["base_url"] or ""))
        or ("(OpenAI API)" if pub["provider"] == "openai" else "—"),
        "API key": "set" if pub["api_key_set"] else "not set",
        "timeout (s)": f"{pub['timeout_s']:g}",
    }


def provider_for(settings: LLMSettings) -> LLMProvider:
    """The provider; :class:`AugmentationError` (readable) when it can't be set up."""
    return make_provider(settings)


def test_connection(settings: LLMSettings) -> str:
    """Ask the model for a tiny JSON object; returns a one-line success message.

    Raises:
        AugmentationError: unreachable server, bad key, missing local model, ... (readable).
    """
    provider = make_provider(settings)
    if not provider.enabled:
        return "Provider 'none': no LLM is used; features are filled by hand."
    answer = provider.complete_json(
        "You answer with one JSON object only.", 'Reply with {"ok": true}.'
    )
    snippet = " ".join(answer.split())[:80]
    return redact_text(f"{provider.name} / {provider.model} answered: {snippet}",
                       settings.api_key)


__all__ = [
    "PROVIDER_HELP",
    "PROVIDER_NAMES",
    "AugmentationError",
    "LLMChoice",
    "default_provider",
    "provider_for",
    "resolve_settings",
    "settings_summary",
    "test_connection",
]
