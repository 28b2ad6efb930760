"""Validation of an uploaded CSV of observed interactions: ``target_id,label[,note]``.

Every problem is reported with its line number (line 1 is the header), so the analyst can fix
the file; nothing is stored unless the whole file is valid. No streamlit here.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

MAX_BYTES = 5_000_000
MAX_ROWS = 100_000
MAX_ERRORS = 20
LABELS = {"1": 1, "0": 0, "true": 1, "false": 0, "yes": 1, "no": 0,
          "confirmed": 1, "rejected": 0, "positive": 1, "negative": 0}
REQUIRED = ("target_id", "label")
ALLOWED = (*REQUIRED, "note")
#: Header names accepted for the target column (a gene may be given by symbol, alias or id).
TARGET_ALIASES = ("gene", "symbol", "gene_symbol", "gene_id", "ncbi_gene_id")
#: ``resolve(text) -> target id``; raises LookupError (message shown) when it can't.
Resolver = Callable[[str], str]


@dataclass
class UploadResult:
    """Parsed decisions ``(target_id, label, note)`` and line-numbered errors."""

    decisions: list[tuple[str, int, str | None]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.decisions)


def parse_interactions_csv(data: bytes, known_targets: Collection[str],
                           resolve: Resolver | None = None) -> UploadResult:
    """Parse and validate the file; ``errors`` is empty when every line is usable.

    ``resolve`` (e.g. :func:`app.lookup.resolve_gene` bound to a workspace) turns a value that
    is not a known target id (a gene symbol, alias, HGNC or Ensembl id) into one; an ambiguous
    alias is a line error listing the candidate genes. The target column may be headed
    ``target_id`` or one of :data:`TARGET_ALIASES`.
    """
    res = UploadResult()
    if len(data) > MAX_BYTES:
        res.errors.append(f"The file is larger than {MAX_BYTES // 1_000_000} MB.")
        return res
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        res.errors.append(f"The file is not UTF-8 text (byte {exc.start}).")
        return res
    if not text.strip():
        res.errors.append("The file is empty; expected a header line: target_id,label[,note]")
        return res
    sample = text[:2048]
    delim = "\t" if sample.count("\t") > sample.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delim)
    try:
        header = [h.strip().lower() for h in next(reader)]
        if "target_id" not in header:
            header = ["target_id" if h in TARGET_ALIASES else h for h in header]
    except csv.Error as exc:
        res.errors.append(f"Line 1: {exc}")
        return res
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in ALLOWED]
    if missing or unknown:
        msg = "Line 1: the header must be target_id,label[,note]"
        if missing:
            msg += f"; missing: {', '.join(missing)}"
        if unknown:
            msg += f"; unexpected: {', '.join(c or '(empty)' for c in unknown)}"
        res.errors.append(msg)
        return res
    col = {c: header.index(c) for c in header}
    seen: dict[str, tuple[int, int]] = {}
    known = {str(t) for t in known_targets}

    def err(line: int, msg: str) -> None:
        if len(res.errors) < MAX_ERRORS:
            res.errors.append(f"Line {line}: {msg}")
        elif len(res.errors) == MAX_ERRORS:
            res.errors.append("… more errors not shown.")

    try:
        for row in reader:
            line = reader.line_num
            if not any(c.strip() for c in row):
                continue
            if len(res.decisions) + len(seen) > MAX_ROWS * 2:
                err(line, f"too many rows (more than {MAX_ROWS})")
                break
            if len(row) != len(header):
                err(line, f"expected {len(header)} fields, got {len(row)}")
                continue
            target = row[col["target_id"]].strip()
            raw_label = row[col["label"]].strip().lower()
            note = row[col["note"]].strip() if "note" in col else ""
            if not target:
                err(line, "target_id is empty")
                continue
            if raw_label not in LABELS:
                err(line, f"label must be 1 or 0 (confirmed/rejected), got {raw_label!r}")
                continue
            label = LABELS[raw_label]
            if target not in known and resolve is not None:
                try:
                    target = str(resolve(target))
                except LookupError as exc:
                    reason = str(exc.args[0]) if exc.args else str(exc)
                    err(line, reason if "alias of several" in reason else
                        f"unknown target_id {target!r} (not an id, symbol or alias in this "
                        "workspace)")
                    continue
                except ValueError as exc:
                    err(line, str(exc))
                    continue
            if target not in known:
                err(line, f"unknown target_id {target!r} (not in this workspace)")
                continue
            if target in seen:
                first_line, first_label = seen[target]
                if first_label != label:
                    err(line, f"target_id {target!r} contradicts line {first_line}")
                continue
            seen[target] = (line, label)
            res.decisions.append((target, label, note or None))
    except csv.Error as exc:
        err(reader.line_num, str(exc))
    if not res.decisions and not res.errors:
        res.errors.append("The file has a header but no rows.")
    return res
