"""Limits on stored values, defaults, the export format, and the credential patterns
refused everywhere.

Part of the repository (:mod:`db.repository` re-exports every name).
"""

from __future__ import annotations

import re

from db.models import (
    ID_LEN,
    KEY_LEN,
    NAME_LEN,
    SHORT_LEN,
)

# Limits -----------------------------------------------------------------------------------------
MAX_NAME_LEN = NAME_LEN  #: item, workspace and dataset names
MAX_SHORT_LEN = SHORT_LEN  #: analyst, created_by, model versions, providers, feature names
MAX_ID_LEN = ID_LEN  #: external ids and target ids
MAX_KEY_LEN = KEY_LEN  #: llm_cache keys
MAX_TEXT_LEN = 20_000  #: one feature value, raw feature value or note
MAX_RESPONSE_LEN = 2_000_000  #: one cached LLM response
MAX_JSON_CHARS = 5_000_000  #: serialized size of one JSON document (features, config, ...)
MAX_FEATURES = 1_000  #: features in one feature version
MAX_DECISIONS = 100_000  #: decisions in one call
MAX_SNAPSHOT_LEN = 10_000  #: entries in one top-k snapshot
MAX_DIM = 65_536  #: embedding dimension
FLOAT32_BYTES = 4

DEFAULT_STATUS = "emerging"
DEFAULT_CREATED_BY = "analyst"

#: Name and version of the export document format.
EXPORT_FORMAT = "emerflow-item"
EXPORT_FORMAT_VERSION = 1

#: String values that look like credentials; any match is refused.
SECRET_VALUE_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_\-]*[A-Za-z0-9]{16}"),  # OpenAI/Anthropic-style
    re.compile(r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{30,}"),  # Hugging Face tokens
    re.compile(r"(?<![A-Za-z0-9])gh[pousr]_[A-Za-z0-9]{36,}"),  # GitHub tokens
    re.compile(r"(?<![A-Za-z0-9])AKIA[0-9A-Z]{16}(?![A-Za-z0-9])"),  # AWS access key ids
    re.compile(r"(?<![A-Za-z0-9])AIza[0-9A-Za-z_\-]{35}"),  # Google API keys
    re.compile(r"(?<![A-Za-z0-9])xox[abprs]-[A-Za-z0-9\-]{10,}"),  # Slack tokens
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/\-]{20,}"),
)
#: Normalized (lower-case, alphanumerics only) dict keys / feature names that are refused.
SECRET_KEYS: frozenset[str] = frozenset(
    {
        "apikey",
        "password",
        "passwd",
        "pwd",
        "secret",
        "secretkey",
        "clientsecret",
        "token",
        "accesstoken",
        "refreshtoken",
        "authtoken",
        "bearertoken",
        "idtoken",
        "sessiontoken",
        "authorization",
        "privatekey",
        "credentials",
    }
)
#: Normalized key suffixes that are refused (``openai_api_key``, ``db_password``, ...).
SECRET_KEY_SUFFIXES: tuple[str, ...] = (
    "apikey",
    "password",
    "secret",
    "secretkey",
    "accesstoken",
    "authtoken",
    "privatekey",
)
_DOMAIN_RE = re.compile(r"^[a-z][a-z0-9_\-]*$")
