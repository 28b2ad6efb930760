"""The analyst's next steps, as flows for the pages (no streamlit here): a candidate list
ranked within the item's ranking (Predictions page) and what to test next (Feedback page).

Both read the item's :class:`app.flows.ItemState` and return plain tables; the ranking logic is
in :mod:`engine.evidence` (candidate table) and :mod:`engine.suggest` (the batch to test).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from app import evidence, lookup
from app import predictions as preds
from app.flows import ItemState, phase_label
from engine import evidence as ev
from engine.schema import DISEASE, MOVIE, TARGET_NOUN
from engine.suggest import (
    DEFAULT_DIALS,
    DEFAULT_K,
    CoAssociation,
    SuggestConfig,
    Suggestion,
    default_dial,
    plan_table,
    suggest,
)
from engine.workspace import Workspace

#: Candidates read from one paste or file at most.
MAX_CANDIDATES = 5_000
MAX_CANDIDATE_BYTES = 2_000_000
_SPLIT = re.compile(r"[\s,;|]+")


@dataclass(frozen=True)
class CandidateList:
    """A pasted or uploaded candidate list, resolved against the workspace's targets.

    Attributes:
        target_ids: resolved targets, in the order given, without duplicates.
        unknown: entries that are no target of the workspace.
        ambiguous: entry -> its candidate targets (an alias of several genes).
    """

    target_ids: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    ambiguous: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def problems(self, noun: str = "target") -> list[str]:
        """One readable line per entry that was not used."""
        out = [f"{u}: not a {noun} of this workspace" for u in self.unknown]
        out += [f"{a}: an alias of {', '.join(c)} — give the symbol or id"
                for a, c in self.ambiguous.items()]
        return out


def read_candidates(ws: Workspace, text: str = "", data: bytes | None = None) -> CandidateList:
    """Resolve a candidate list pasted as text and/or uploaded (CSV/TSV/TXT: symbols, aliases
    or ids separated by commas, semicolons, tabs or new lines; a header line ``gene``,
    ``symbol``, ``target_id`` or ``user`` is skipped).

    Raises:
        ValueError: nothing given, a file that is not UTF-8 text or too large, or too many
            entries.
    """
    parts: list[str] = []
    if data:
        if len(data) > MAX_CANDIDATE_BYTES:
            raise ValueError(f"The file is larger than {MAX_CANDIDATE_BYTES // 1_000_000} MB.")
        try:
            parts += _SPLIT.split(data.decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise ValueError(f"The file is not UTF-8 text (byte {exc.start}).") from None
    parts += _SPLIT.split(text or "")
    entries = [p.strip().strip('"').strip("'") for p in parts if p.strip()]
    entries = [e for e in entries if e.lower() not in ("gene", "genes", "symbol", "target_id",
                                                       "gene_id", "user", "user_id", "id")]
    if not entries:
        raise ValueError(f"Paste or upload at least one {TARGET_NOUN[ws.domain]}.")
    if len(entries) > MAX_CANDIDATES:
        raise ValueError(f"At most {MAX_CANDIDATES} candidates, got {len(entries)}.")
    ids: list[str] = []
    unknown: list[str] = []
    ambiguous: dict[str, tuple[str, ...]] = {}
    for e in entries:
        try:
            gid = lookup.resolve_gene(ws, e).gene_id
        except lookup.AmbiguousGeneError as exc:
            ambiguous[e] = tuple(f"{g.symbol} ({g.gene_id})" for g in exc.candidates)
            continue
        except (LookupError, ValueError):
            unknown.append(e)
            continue
        if gid not in ids:
            ids.append(gid)
    return CandidateList(tuple(ids), tuple(dict.fromkeys(unknown)), ambiguous)


def candidate_ranking(ws: Workspace, state: ItemState, candidates: CandidateList, *,
                      phenotypes: Sequence[str] = ()) -> pd.DataFrame:
    """The item's ranking restricted to the candidates: rank in the list first, then the
    catalog rank, percentile and lift as in the full table, with the same evidence.

    Raises:
        ValueError: no resolved candidate.
    """
    if not candidates.target_ids:
        raise ValueError(f"None of the entries is a {TARGET_NOUN[ws.domain]} of this workspace.")
    table = ev.candidate_table(
        ws, state.prediction, state.decisions, candidates.target_ids,
        genes=lookup.gene_resolver(ws) if ws.domain == DISEASE else None,
        active=preds.rated_targets(ws) if ws.domain == MOVIE else None)
    return evidence.with_evidence(ws, state, table, phenotypes=phenotypes)


_CO: dict[tuple[str, str], CoAssociation] = {}


def coassociation(ws: Workspace) -> CoAssociation:
    """The workspace's :class:`engine.suggest.CoAssociation`, built once per model."""
    key = (ws.name, ws.model_version)
    if key not in _CO:
        _CO[key] = CoAssociation(ws)
    return _CO[key]


def suggest_next(ws: Workspace, state: ItemState, *, k: int = DEFAULT_K,
                 dial: float | None = None,
                 candidates: Sequence[str] | None = None) -> list[Suggestion]:
    """What to test next for the item: ``k`` untested targets, from "most likely" (dial 0)
    to "most informative" (dial 1); default dial: the one chosen on validation for the
    domain (:data:`engine.suggest.DEFAULT_DIALS`).

    Raises:
        ValueError: ``k`` below 1 or a dial outside [0, 1].
    """
    cfg = SuggestConfig(k=int(k), dial=default_dial(ws.domain) if dial is None else float(dial))
    active = preds.rated_targets(ws) if ws.domain == MOVIE else None
    if candidates is None and active:
        candidates = list(active)
    return suggest(ws, state.prediction, state.decisions, cfg, coassoc=coassociation(ws),
                   candidates=candidates)


def suggestion_plan(ws: Workspace, state: ItemState,
                    suggestions: Sequence[Suggestion]) -> pd.DataFrame:
    """The exportable plan: item, phase, order, target, id, rank, score, why test it."""
    return plan_table(suggestions, item=state.item.name, phase=phase_label(state.phase),
                      noun=TARGET_NOUN[ws.domain])


def suggestion_ids(suggestions: Sequence[Suggestion]) -> list[str]:
    return [s.target_id for s in suggestions]


__all__ = ["DEFAULT_DIALS", "CandidateList", "candidate_ranking", "coassociation",
           "read_candidates", "suggest_next", "suggestion_ids", "suggestion_plan"]
