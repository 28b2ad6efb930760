"""Data-format errors and the validating, vectorized table reader that raises them.

Every loader reads its files through :func:`read_table`, so a malformed input always produces
the same kind of message: the file, the 1-based line number and what was expected there.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


class DataFormatError(ValueError):
    """A data file does not have the expected format.

    Attributes:
        path: the offending file.
        line: 1-based line number in the (decompressed) file, or None for whole-file problems.
    """

    def __init__(self, path: Path | str, message: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        where = f"{self.path}, line {line}" if line is not None else f"{self.path}"
        super().__init__(f"{where}: {message}")


class MissingDataFileError(DataFormatError, FileNotFoundError):
    """A required data file is absent; the message names the path and what it should hold."""

    def __init__(self, path: Path | str, what: str) -> None:
        super().__init__(path, f"file not found; it should hold {what}")


@dataclass
class RawTable:
    """A text table read as strings, with what is needed to point at a bad line.

    Attributes:
        frame: one column per field, every value a ``str`` (no NA conversion).
        path: the file read.
        first_line: 1-based line number of the first data row (2 when there is a header).
        sha256: sha256 of the file bytes as stored on disk (before decompression).
    """

    frame: pd.DataFrame
    path: Path
    first_line: int
    sha256: str

    def line_of(self, row: int) -> int:
        """1-based file line number of data row ``row`` (0-based position in ``frame``)."""
        return self.first_line + int(row)

    def fail(self, row: int, message: str) -> DataFormatError:
        """A :class:`DataFormatError` pointing at data row ``row``."""
        return DataFormatError(self.path, message, line=self.line_of(row))

    def ints(self, column: str, what: str, allow_empty: bool = False) -> pd.Series:
        """Column ``column`` parsed as integers (surrounding spaces stripped).

        Raises:
            DataFormatError: naming the first row that is not an integer.
        """
        text = self.frame[column].str.strip()
        values = pd.to_numeric(text.where(text != ""), errors="coerce")
        if pd.api.types.is_integer_dtype(values.dtype):
            return values.astype("int64")
        bad = ~text.str.fullmatch(r"[+-]?\d+")
        if allow_empty:
            bad &= text != ""
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise self.fail(row, f"{what} must be an integer, got {self.frame[column].iloc[row]!r}")
        return values.astype("Int64") if allow_empty else values.astype("int64")

    def floats(self, column: str, what: str, allow_empty: bool = True) -> pd.Series:
        """Column ``column`` parsed as floats; empty values become NaN when allowed.

        Raises:
            DataFormatError: naming the first row that is not a number.
        """
        text = self.frame[column].str.strip()
        values = pd.to_numeric(text.where(text != ""), errors="coerce").astype("float64")
        bad = values.isna() & ((text != "") | (not allow_empty))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise self.fail(row, f"{what} must be a number, got {self.frame[column].iloc[row]!r}")
        return values


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def require_file(path: Path | None, what: str) -> Path:
    """``path`` if it is an existing file, else :class:`MissingDataFileError`."""
    if path is None:
        raise MissingDataFileError("<not given>", what)
    path = Path(path)
    if not path.is_file():
        raise MissingDataFileError(path, what)
    return path


def _decompressed(path: Path, raw: bytes, member: str | None) -> bytes:
    """The text bytes of ``raw``: gunzipped for ``.gz``, the member of a ``.zip``."""
    name = path.name.lower()
    try:
        if name.endswith(".gz"):
            return gzip.decompress(raw)
        if name.endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                names = archive.namelist()
                if member is None:
                    candidates = [n for n in names if not n.endswith("/")]
                    if len(candidates) != 1:
                        raise DataFormatError(path, f"expected one file in the zip, found {names}")
                    member = candidates[0]
                if member not in names:
                    raise DataFormatError(path, f"zip lacks member {member!r} (has {names})")
                return archive.read(member)
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataFormatError(path, f"cannot decompress: {exc}") from exc
    return raw


def read_table(
    path: Path,
    *,
    what: str,
    sep: str = "\t",
    names: Sequence[str] | None = None,
    required: Sequence[str] = (),
    encoding: str = "utf-8",
    zip_member: str | None = None,
    comment_header: bool = False,
) -> RawTable:
    """Read a delimited text file (plain, ``.gz`` or ``.zip``) as strings, checking field counts.

    Args:
        path: the file.
        what: what the file should hold (used in error messages).
        sep: field separator; multi-character separators (``::``) are supported.
        names: column names for a file without header; None means the first line is a header.
        required: header columns that must be present.
        encoding: text encoding of the file.
        zip_member: member to read from a ``.zip`` (default: its only file).
        comment_header: strip a leading ``#`` from the header line (NCBI gene_info).

    Raises:
        MissingDataFileError: the file does not exist.
        DataFormatError: a line has the wrong number of fields, or a required column is absent.
    """
    path = require_file(path, what)
    raw = path.read_bytes()
    data = _decompressed(path, raw, zip_member).replace(b"\r\n", b"\n")
    sep_bytes = sep.encode(encoding)
    if len(sep_bytes) > 1:
        data = data.replace(sep_bytes, b"\t")
        sep_bytes = b"\t"
    if data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        raise DataFormatError(path, f"file is empty; it should hold {what}")
    first_line = 1
    if names is None:
        end = data.find(b"\n")
        header_bytes = data if end < 0 else data[:end]
        header = header_bytes.decode(encoding).split(sep_bytes.decode())
        if comment_header and header and header[0].startswith("#"):
            header[0] = header[0][1:]
        names = [h.strip() for h in header]
        missing = [c for c in required if c not in names]
        if missing:
            raise DataFormatError(
                path, f"header lacks columns {missing}; expected a header of {what}", line=1
            )
        data = b"" if end < 0 else data[end + 1 :]
        first_line = 2
    names = list(names)
    if data:
        buf = np.frombuffer(data, dtype=np.uint8)
        line_ends = np.flatnonzero(buf == 10)
        line_ends = np.append(line_ends, len(buf))
        seps = np.flatnonzero(buf == sep_bytes[0])
        fields = np.diff(np.concatenate(([0], np.searchsorted(seps, line_ends)))) + 1
        bad = np.flatnonzero(fields != len(names))
        if bad.size:
            row = int(bad[0])
            raise DataFormatError(
                path,
                f"expected {len(names)} fields ({', '.join(names)}) separated by {sep!r}, "
                f"found {int(fields[row])}",
                line=first_line + row,
            )
        frame = pd.read_csv(
            io.BytesIO(data),
            sep=sep_bytes.decode(),
            header=None,
            names=names,
            dtype=str,
            quoting=csv.QUOTE_NONE,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            encoding=encoding,
            engine="c",
        )
    else:
        frame = pd.DataFrame({n: pd.Series([], dtype=str) for n in names})
    return RawTable(frame=frame, path=path, first_line=first_line, sha256=sha256_bytes(raw))
