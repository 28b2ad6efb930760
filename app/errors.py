"""Readable messages for failures users can meet (disk full, read-only home, database locked).

:func:`user_message` turns an exception into one plain sentence for the page; the details (and
the traceback) go to the server log only, under a short reference the message quotes. No
streamlit import here.
"""

from __future__ import annotations

import errno
import logging
import uuid

log = logging.getLogger("emerflow")

DISK_FULL = ("The disk holding EmerFlow's data is full (or failing): nothing was saved. "
             "Free some space and try again.")
READ_ONLY = ("EmerFlow's data folder is read-only: you can browse, but nothing can be saved. "
             "Ask the operator to make EMERFLOW_HOME (or the database) writable.")
LOCKED = ("The database is busy (another process holds its lock): nothing was saved. "
          "Try again in a moment.")
UNREACHABLE = ("The database cannot be reached: nothing was saved. Check that it is running "
               "and that DATABASE_URL is right.")
NEWER_SCHEMA = ("The database was written by a newer version of EmerFlow Studio: nothing was "
                "changed. Upgrade EmerFlow Studio, or point DATABASE_URL / EMERFLOW_HOME at "
                "another database.")


def classify(exc: BaseException) -> str | None:
    """One of the messages above for a known storage failure, else None."""
    from db.errors import SchemaError

    for e in _chain(exc):
        if isinstance(e, SchemaError) and "newer" in str(e):
            return NEWER_SCHEMA
        if isinstance(e, OSError) and e.errno is not None:
            if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
                return DISK_FULL
            if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                return READ_ONLY
        text = str(e).lower()
        if "database or disk is full" in text or "disk i/o error" in text \
                or "no space left" in text or "could not extend file" in text:
            return DISK_FULL
        if "readonly database" in text or "read-only" in text or "unable to open database" \
                in text or "permission denied" in text or "read only" in text:
            return READ_ONLY
        if "database is locked" in text or "lock timeout" in text \
                or "could not obtain lock" in text:
            return LOCKED
        if "connection refused" in text or "could not connect" in text \
                and "server" in text:
            return UNREACHABLE
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        out.append(cur)
        orig = getattr(cur, "orig", None)  # sqlalchemy DBAPIError wraps the driver's error
        if isinstance(orig, BaseException) and id(orig) not in seen:
            out.append(orig)
            seen.add(id(orig))
        cur = cur.__cause__ or cur.__context__
    return out


def user_message(exc: BaseException, action: str = "The action") -> str:
    """A readable sentence for ``exc``; the traceback is logged server-side with a reference."""
    known = classify(exc)
    ref = uuid.uuid4().hex[:8]
    log.error("[%s] %s failed", ref, action, exc_info=(type(exc), exc, exc.__traceback__))
    if known:
        return f"{known} (reference {ref})"
    return (f"{action} failed unexpectedly; nothing was changed. The details are in the "
            f"server log (reference {ref}).")


__all__ = ["DISK_FULL", "LOCKED", "NEWER_SCHEMA", "READ_ONLY", "UNREACHABLE", "classify",
           "user_message"]
