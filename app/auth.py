"""Who is working: a login through Streamlit's ``st.login`` (OIDC) when it is configured, else
the local single-user mode. No streamlit import here (the pages pass ``st.user`` in).

Login is on when ``.streamlit/secrets.toml`` has an ``[auth]`` section with ``client_id``,
``client_secret``, ``server_metadata_url``, ``redirect_uri`` and ``cookie_secret`` (the keys
``st.login`` needs). Then every page needs a logged-in user, every decision, feature version
and item records that user's identity (e-mail, else subject), and only identities listed in
``[emerflow] admins = [...]`` may change the Settings page. Without ``[auth]`` the dashboard
is the local single-user tool (bound to 127.0.0.1) with a free-text analyst name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Keys ``st.login`` needs in ``[auth]`` (or in one ``[auth.<provider>]`` sub-section).
AUTH_KEYS = ("client_id", "client_secret", "server_metadata_url")
SHARED_KEYS = ("redirect_uri", "cookie_secret")
#: The most characters of an identity stored with a decision (db's short-text limit).
MAX_IDENTITY_LEN = 200
_ANALYST_RE = re.compile(r"[^\w .@'\-]+", re.UNICODE)


@dataclass(frozen=True)
class Identity:
    """A logged-in user: ``subject`` (the provider's ``sub``), e-mail and display name."""

    subject: str
    email: str | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        """What is stored with decisions and audit rows: the e-mail, else the subject."""
        return (self.email or self.subject)[:MAX_IDENTITY_LEN]


def auth_configured(secrets: Mapping[str, Any] | None) -> bool:
    """Whether ``secrets`` configures an OIDC login for ``st.login``."""
    auth = (secrets or {}).get("auth")
    if not isinstance(auth, Mapping):
        return False
    if not all(str(auth.get(k) or "").strip() for k in SHARED_KEYS):
        return False
    if all(str(auth.get(k) or "").strip() for k in AUTH_KEYS):
        return True
    return any(isinstance(sub, Mapping) and all(str(sub.get(k) or "").strip() for k in AUTH_KEYS)
               for sub in auth.values())


def identity_from_user(user: Mapping[str, Any] | None) -> Identity | None:
    """The identity in ``st.user`` (as a mapping); None when nobody is logged in."""
    user = user or {}
    if not user.get("is_logged_in"):
        return None
    subject = str(user.get("sub") or user.get("email") or "").strip()
    if not subject:
        return None
    email = str(user.get("email") or "").strip() or None
    name = str(user.get("name") or "").strip() or None
    return Identity(subject=subject, email=email, name=name)


def admins(secrets: Mapping[str, Any] | None) -> list[str]:
    """``[emerflow] admins``: e-mails or subjects allowed to change settings."""
    section = (secrets or {}).get("emerflow")
    values: Sequence[Any] = section.get("admins", []) if isinstance(section, Mapping) else []
    if isinstance(values, str):
        values = [values]
    return [str(v).strip().lower() for v in values if str(v).strip()]


def may_change_settings(identity: Identity | None, secrets: Mapping[str, Any] | None) -> bool:
    """Local mode: yes. With login: only the identities listed in ``[emerflow] admins``."""
    if not auth_configured(secrets):
        return True
    if identity is None:
        return False
    allowed = set(admins(secrets))
    return bool({identity.subject.lower(), (identity.email or "").lower()} & allowed)


def clean_analyst_name(text: str | None) -> str:
    """A free-text analyst name (local mode) without markup: letters, digits, spaces and
    ``. @ ' -`` only, at most :data:`MAX_IDENTITY_LEN` characters; ``analyst`` when empty."""
    cleaned = " ".join(_ANALYST_RE.sub(" ", text or "").split())[:MAX_IDENTITY_LEN]
    return cleaned or "analyst"


__all__ = ["Identity", "admins", "auth_configured", "clean_analyst_name", "identity_from_user",
           "may_change_settings"]
