"""Exceptions raised by the ``db`` package.

Every refusal of user-entered data raises :class:`ValidationError` (a ``ValueError``) *before*
anything is written; its ``field`` attribute names the offending field so the dashboard can
point the analyst at it.
"""

from __future__ import annotations


class DBError(Exception):
    """Base class of every error raised on purpose by the ``db`` package."""


class ValidationError(DBError, ValueError):
    """A value was refused before anything was written.

    Attributes:
        field: dotted name of the refused field (``"decisions[3].label"``, ``"name"``, ...).
        reason: human-readable explanation (never contains the refused secret itself).
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class NotFoundError(ValidationError):
    """The referenced row (item, workspace) does not exist."""


class DuplicateError(ValidationError):
    """The value would duplicate a row that must be unique (e.g. an item's external id)."""


class PhaseError(ValidationError):
    """The requested phase transition is not allowed (e.g. going back to an earlier phase)."""


class ConcurrentUpdateError(PhaseError):
    """Another refinement of the item committed after this one was computed (nothing written).

    ``phase`` is the item's phase now, ``version`` its ``phase_version`` now.
    """

    def __init__(self, field: str, message: str, *, phase: int = 0, version: int = 0) -> None:
        super().__init__(field, message)
        self.phase = phase
        self.version = version


class SecretRefusedError(ValidationError):
    """The value looks like a credential (API key, password, token) and is never stored."""


class SchemaError(DBError):
    """The database schema cannot be brought to the revision this code expects."""
