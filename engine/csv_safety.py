"""CSV/TSV formula-injection neutralizing for every file a spreadsheet may open.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a
formula by Excel, LibreOffice and Google Sheets. :func:`neutralize` prefixes such text with a
single quote (OWASP's advice: the spreadsheet then shows it as text); numbers are left alone.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

#: First characters that make a spreadsheet evaluate a cell.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is text starting with a formula character."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def restore(value: Any) -> Any:
    """Undo :func:`neutralize` when reading a file this project wrote."""
    if isinstance(value, str) and value.startswith("'") and value[1:2] and \
            value[1:].startswith(FORMULA_STARTS):
        return value[1:]
    return value


def neutralize_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells (and column names) are neutralized."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col].dtype):
            out[col] = out[col].map(neutralize)
    out.columns = [neutralize(c) for c in out.columns]
    return out


def header_value(value: Any, sep: str = ",") -> str:
    """A stamp value safe inside a ``# key: value`` comment line of a CSV/TSV file.

    The separator, quotes, line breaks and ``%`` are percent-encoded (``%2C``, ``%09``,
    ``%22``, ``%0A``, ``%0D``, ``%25``), so the line stays one cell that starts with ``#``
    and can never be split into formula cells; decode with :func:`urllib.parse.unquote`.
    """
    text = str(value)
    for ch, code in (("%", "%25"), ("\r", "%0D"), ("\n", "%0A"), ('"', "%22"), ("\t", "%09"),
                     (",", "%2C"), (";", "%3B")):
        text = text.replace(ch, code)
    if sep not in (",", "\t", ";"):
        text = text.replace(sep, "%" + format(ord(sep), "02X"))
    return text


__all__ = ["FORMULA_STARTS", "header_value", "neutralize", "neutralize_frame", "restore"]
