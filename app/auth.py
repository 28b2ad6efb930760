"""Who is working: a login through Streamlit's ``st.login`` (OIDC) when it is configured, else
the local single-user mode. No streamlit import here (the pages pass ``st.user`` in).

Login is on when ``.streamlit/secrets.toml`` has an ``[auth]`` section with ``client_id``,
``client_secret``, ``server_metadata_url``, ``redirect_uri`` and ``cookie_secret`` (the keys
``st.login`` needs). Then every page needs a logged-in user, every decision, feature version
and item records that user's identity (e-mail, else subject), and only identities listed in
``[emerflow] admins = [...]`` may change the Settings page: an entry matches the provider's
subject id exactly, or an e-mail only when the provider says it is verified
(``email_verified`` true), since anyone can put any address on an unverified account.
Without ``[auth]`` the dashboard is the local single-user tool (bound to 127.0.0.1) with a
free-text analyst name.
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
    """A logged-in user: ``subject`` (the provider's ``sub``), e-mail, display name and
    whether the provider verified that e-mail (``email_verified``)."""

    subject: str
    email: str | None = None
    name: str | None = None
    email_verified: bool = False
    #: Whether ``subject`` is the provider's ``sub`` claim (not the e-mail standing in for it).
    has_sub: bool = True

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
    sub = str(user.get("sub") or "").strip()
    subject = sub or str(user.get("email") or "").strip()
    if not subject:
        return None
    email = str(user.get("email") or "").strip() or None
    name = str(user.get("name") or "").strip() or None
    return Identity(subject=subject, email=email, name=name,
                    email_verified=_claim_true(user.get("email_verified")),
                    has_sub=bool(sub))


def _claim_true(value: Any) -> bool:
    """An OIDC boolean claim: ``True``, or the string ``"true"`` some providers send."""
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() == "true"


def admins(secrets: Mapping[str, Any] | None) -> list[str]:
    """``[emerflow] admins``: verified e-mails or subject ids allowed to change settings."""
    section = (secrets or {}).get("emerflow")
    values: Sequence[Any] = section.get("admins", []) if isinstance(section, Mapping) else []
    if isinstance(values, str):
        values = [values]
    return [str(v).strip() for v in values if str(v).strip()]


def may_change_settings(identity: Identity | None, secrets: Mapping[str, Any] | None) -> bool:
    """Local mode: yes. With login: only identities listed in ``[emerflow] admins``, matched
    by subject id (exactly) or by e-mail (case-insensitively) when ``email_verified``."""
    if not auth_configured(secrets):
        return True
    if identity is None:
        return False
    listed = admins(secrets)
    if identity.has_sub and identity.subject in listed:
        return True
    if identity.email and identity.email_verified:
        return identity.email.lower() in {a.lower() for a in listed}
    return False


def clean_analyst_name(text: str | None) -> str:
    """A free-text analyst name (local mode) without markup: letters, digits, spaces and
    ``. @ ' -`` only, at most :data:`MAX_IDENTITY_LEN` characters; ``analyst`` when empty."""
    cleaned = " ".join(_ANALYST_RE.sub(" ", text or "").split())[:MAX_IDENTITY_LEN]
    return cleaned or "analyst"


__all__ = ["Identity", "admins", "auth_configured", "clean_analyst_name", "identity_from_user",
           "may_change_settings"]
