"""Endpoints, keys and redaction for the LLM providers.

Which key goes to which endpoint (:func:`key_for_endpoint`), how two base URLs compare
(:func:`normalize_endpoint`, :func:`same_endpoint`), and how URLs and messages are made safe to
show, log or write (:func:`redact_url`, :func:`redact_text`): no credential ever leaves in an
error message. Re-exported by :mod:`engine.augment.providers`.
"""

from __future__ import annotations

import re

#: Query parameters whose values are credentials (compared lower-case, ``-``/``_`` ignored).
SECRET_QUERY_PARAMS = frozenset({
    "apikey", "key", "token", "accesstoken", "authtoken", "secret", "password", "pass",
    "pwd", "auth", "signature", "sig", "code", "clientsecret", "idtoken", "refreshtoken",
})
_URL_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>]+")
_USERINFO_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*://)([^/?#@]*@)")
_QUERY_PARAM_RE = re.compile(r"([?&;])([^=&;#\s]+)=([^&;#\s]*)")


def redact_url(url: str | None) -> str:
    """``url`` with credentials masked: ``user:pass@`` becomes ``***@`` and the values of
    credential query parameters (``api-key``, ``key``, ``token``, ...) become ``***``.

    Safe to show, log or write. ``None`` gives ``""``.
    """
    if not url:
        return ""
    out = _USERINFO_RE.sub(lambda m: f"{m.group(1)}***@", url)

    def _param(m: re.Match[str]) -> str:
        name = m.group(2)
        norm = re.sub(r"[-_]", "", name.lower())
        if norm in SECRET_QUERY_PARAMS or norm.endswith(("key", "token", "secret", "password")):
            return f"{m.group(1)}{name}=***"
        return m.group(0)

    return _QUERY_PARAM_RE.sub(_param, out)


#: Where the ``openai`` client sends requests when no base URL is set.
OPENAI_API_ENDPOINT = "https://api.openai.com/v1"


def normalize_endpoint(url: str | None) -> str:
    """``url`` compared as an endpoint: stripped, without trailing ``/``, lower-case."""
    return (url or "").strip().rstrip("/").lower()


def same_endpoint(a: str | None, b: str | None) -> bool:
    """Whether two base URLs name the same endpoint (see :func:`normalize_endpoint`)."""
    return normalize_endpoint(a) == normalize_endpoint(b)


def key_for_endpoint(base_url: str | None, api_key: str | None, *,
                     operator_url: str | None, operator_key: str | None) -> str | None:
    """The one key-containment rule, for every entry point (Settings page, CLI flags, the
    environment): the operator's key (``OPENAI_API_KEY``) goes only to the operator's endpoint
    (``OPENAI_BASE_URL``, or the OpenAI API when that is unset). Any other ``base_url`` gets
    only the ``api_key`` given with it, or none.
    """
    if not (base_url or "").strip() or same_endpoint(base_url, operator_url):
        return api_key or operator_key
    return api_key or None


def redact_text(text: str, *secrets: str | None) -> str:
    """``text`` with every URL's credentials masked and each of ``secrets`` replaced."""
    text = _URL_RE.sub(lambda m: redact_url(m.group(0)), text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def _redact(text: str, secret: str | None) -> str:
    """``text`` with URL credentials and ``secret`` masked (:func:`redact_text`)."""
    return redact_text(text, secret)
