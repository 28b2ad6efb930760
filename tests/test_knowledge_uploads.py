"""CSV uploads of decisions with gene symbols, aliases or ids (resolver on fixtures)."""

from __future__ import annotations

from pathlib import Path

from app.uploads import parse_interactions_csv
from engine.knowledge import Knowledge, KnowledgeSources

FIX = Path(__file__).resolve().parent / "fixtures" / "knowledge"
KNOWN = {"1", "5158", "6641", "7157"}


def _resolve(q: str) -> str:
    return Knowledge.load(KnowledgeSources(FIX)).genes.resolve(q).gene_id


def test_symbols_aliases_and_ids():
    res = parse_interactions_csv(b"target_id,label\nPDE6B,1\np53,0\n6641,1\nHGNC:5,1\n",
                                 KNOWN, resolve=_resolve)
    assert res.errors == []
    assert [(t, y) for t, y, _ in res.decisions] == [("5158", 1), ("7157", 0), ("6641", 1),
                                                     ("1", 1)]


def test_gene_header_ambiguous_alias_and_unknown():
    res = parse_interactions_csv(b"symbol,label\nA1B,1\nNOPE9,1\nFBN1,1\n", KNOWN,
                                 resolve=_resolve)
    assert res.errors[0].startswith("Line 2: 'A1B' is an alias of several genes: A1BG (NCBI 1), "
                                    "SNTB1 (NCBI 6641)")
    assert res.errors[1] == ("Line 3: unknown target_id 'NOPE9' (not an id, symbol or alias in "
                             "this workspace)")
    assert res.errors[2] == "Line 4: unknown target_id '2200' (not in this workspace)"


def test_without_resolver_ids_only():
    res = parse_interactions_csv(b"target_id,label\nPDE6B,1\n", KNOWN)
    assert res.errors == ["Line 2: unknown target_id 'PDE6B' (not in this workspace)"]
