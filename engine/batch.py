"""Batch ranking: many new items at once, from a script or ``emerflow rank``.

For a notebook::

    from engine.batch import rank_items
    from engine.build import open_workspace

    ws = open_workspace("disgenet-curated")
    result = rank_items(ws, ["Marfan syndrome", "OMIM:154700", "C0002395"], top=100)
    result.table        # one row per (item, gene): query, item_id, item + the dashboard columns
    result.errors       # {query: why it was skipped}

    # with confirmed genes: the item is refined first, as the Feedback page does
    rank_items(ws, [BatchItem("Marfan syndrome", confirmed=("FBN1", "TGFBR2"))], top=100)

    # to a file (TSV, CSV or JSON by extension), resumable after an interruption
    rank_items(ws, read_items("diseases.tsv"), top=100, out="ranked.tsv")

Each item goes through the dashboard's own path: the disease is resolved as the New item page
resolves it (name, synonym, CUI, ``OMIM:``/``ORPHA:``/MeSH/DO id; :mod:`engine.knowledge`) and
its form is pre-filled the same way (the association file's disease type, MeSH classes and
semantic type when the workspace knows the CUI; the curated synonyms and HPO phenotypes), then
``Workspace.predict(features, augmented=..., descriptors=...)``; with decisions, the phase-0
embedding is refined once with all of them (``Workspace.refine``) and predicted again with
``embedding=`` and ``decisions=``, as the Feedback page's refinement does. The table and its
evidence are :func:`engine.evidence.ranked_table` and :func:`engine.evidence.with_evidence`,
the functions behind the Predictions page and its exports: a batch row equals the dashboard's
row for the same item (``tests/test_batch.py`` checks it). Movies are found by catalogue title
("Heat (1995)") or name; their features are the catalogue's title, year, genres (and
description, where the catalogue has one), as typed into the New movie form.

The items file (:func:`read_items`): ``.txt`` one item per line; ``.tsv``/``.csv`` with a column
``item`` (else the first column) and optional ``confirmed`` / ``rejected`` columns (targets
separated by ``;``, ``|`` or ``,``: symbols, aliases or ids); ``.json`` a list of strings or of
``{"item": ..., "confirmed": [...], "rejected": [...]}``.

Resuming: each finished item is appended to ``<out>.partial.jsonl``; a rerun with the same
workspace model skips the items found there, and the file is removed once ``out`` is written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from engine import evidence as ev
from engine.data.demo import ML_GENRES
from engine.data.disgenet import MESH_CLASS_NAMES, mesh_class_names
from engine.knowledge import (
    CURATED_FEATURES,
    GeneLookupError,
    GeneResolver,
    Knowledge,
    curated_features,
)
from engine.knowledge.diseases import DiseaseNotFoundError
from engine.schema import DESCRIPTION, DISEASE, ITEM_ID, MULTI_SEP, NAME, TARGET_ID
from engine.workspace import Prediction, Workspace

#: Columns put before the dashboard's columns in a batch table.
QUERY, ITEM, ITEM_NAME = "query", "item_id", "item"
BATCH_COLUMNS = [QUERY, ITEM, ITEM_NAME]
FORMATS = {".tsv": "\t", ".csv": ",", ".json": ""}
DEFAULT_TOP = 100
_LIST_SPLIT = re.compile(r"[;|,]")
_LABEL_CUI = re.compile(r"\((C\d{7})\)\s*$")


@dataclass(frozen=True)
class BatchItem:
    """One line of a batch: the item as typed, and the analyst's decisions so far.

    Attributes:
        query: disease name, synonym, CUI, ``OMIM:``/``ORPHA:``/MeSH/DO id; movie title.
        confirmed: confirmed targets (symbols, aliases or ids).
        rejected: rejected targets.
    """

    query: str
    confirmed: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not str(self.query or "").strip():
            raise ValueError("BatchItem.query must name an item")
        for name in ("confirmed", "rejected"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = split_targets(value)
            object.__setattr__(self, name, tuple(str(v).strip() for v in value if str(v).strip()))


@dataclass(frozen=True)
class ResolvedItem:
    """A batch item as the engine sees it (what the dashboard stores for the same item).

    Attributes:
        query: as typed.
        item_id: CUI or movie id.
        name: display name.
        features: the dataset's raw item features (``Workspace.predict``'s first argument).
        augmented: curated values the encoder reads (synonyms, phenotypes).
        descriptors: their descriptors.
        phenotypes: HPO ids of the item (phenotype overlap in the evidence).
        decisions: ``{target_id: 1 confirmed / 0 rejected}``.
    """

    query: str
    item_id: str
    name: str
    features: dict[str, object]
    augmented: dict[str, str] = field(default_factory=dict)
    descriptors: dict[str, str] = field(default_factory=dict)
    phenotypes: tuple[str, ...] = ()
    decisions: dict[str, int] = field(default_factory=dict)


@dataclass
class BatchResult:
    """What :func:`rank_items` returns.

    Attributes:
        table: every ranked row of every item (:data:`BATCH_COLUMNS` + the dashboard's).
        errors: query -> why the item was skipped (not found, unknown target, ...).
        resumed: items taken from a previous run's partial file.
    """

    table: pd.DataFrame
    errors: dict[str, str] = field(default_factory=dict)
    resumed: int = 0


def split_targets(value: object) -> tuple[str, ...]:
    """``"FBN1; TGFBR2|5158"`` -> ``("FBN1", "TGFBR2", "5158")``; lists pass through."""
    if value is None or (isinstance(value, float) and value != value):
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(p.strip() for p in _LIST_SPLIT.split(str(value)) if p.strip())


def read_items(path: str | Path) -> list[BatchItem]:
    """The items of a batch file (see the module docstring for the formats).

    Raises:
        FileNotFoundError: no such file.
        ValueError: an unreadable file, an empty one, or an unknown extension.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"items file not found: {path}")
    ext = path.suffix.lower()
    if ext in ("", ".txt", ".list"):
        lines = path.read_text(encoding="utf-8").splitlines()
        out = [BatchItem(x.strip()) for x in lines if x.strip() and not x.startswith("#")]
    elif ext == ".json":
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not JSON ({exc})") from None
        if not isinstance(doc, list):
            raise ValueError(f"{path}: expected a JSON list of items")
        out = [BatchItem(d) if isinstance(d, str) else
               BatchItem(str(d.get("item", "")), split_targets(d.get("confirmed")),
                         split_targets(d.get("rejected"))) for d in doc]
    elif ext in (".tsv", ".csv"):
        try:
            frame = pd.read_csv(path, sep="\t" if ext == ".tsv" else ",", dtype=str,
                                keep_default_na=False)
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: not a readable {ext[1:].upper()} file ({exc})") from None
        if frame.empty:
            raise ValueError(f"{path}: no items")
        col = "item" if "item" in frame.columns else frame.columns[0]
        out = [BatchItem(r[col], split_targets(r.get("confirmed")),
                         split_targets(r.get("rejected")))
               for r in frame.to_dict("records") if str(r[col]).strip()]
    else:
        raise ValueError(f"{path}: unknown items file type {ext!r} (use .txt, .tsv, .csv or "
                         ".json)")
    if not out:
        raise ValueError(f"{path}: no items")
    return out


# ---- resolving an item the way the New item page does ------------------------------------------


class BatchContext:
    """Everything the per-item work needs, built once per batch: the curated knowledge, the
    workspace's gene resolver, its association index and the rated users (movies)."""

    def __init__(self, ws: Workspace, knowledge: Knowledge | None = None) -> None:
        self.ws = ws
        self.knowledge = knowledge or Knowledge()
        self.genes: GeneResolver = ev.workspace_genes(ws, self.knowledge.genes)
        scores = {}
        if ws.domain == DISEASE and self.knowledge.sources is not None and \
                self.knowledge.sources.has("gda"):
            scores = ev.read_gda_scores(self.knowledge.sources.path("gda"))
        self.index = ev.AssociationIndex.build(ws, scores if ws.domain == DISEASE else None)
        self.hpo = self.knowledge.hpo.annotations if self.knowledge.hpo is not None else None
        train = ws.split.train
        self.active = (frozenset(train[TARGET_ID].astype(str).unique())
                       if ws.domain != DISEASE else None)
        self._items = ws.dataset.items.set_index(ITEM_ID, drop=False)
        self._titles: dict[str, list[str]] | None = None

    # ---- items ---------------------------------------------------------------------------
    def resolve(self, item: BatchItem) -> ResolvedItem:
        """The engine inputs of one batch item.

        Raises:
            LookupError: the item or one of its targets is not found (readable message).
            ValueError: a malformed query.
        """
        res = (self._disease(item.query) if self.ws.domain == DISEASE
               else self._movie(item.query))
        decisions = {**{self.target_id(t): 0 for t in item.rejected},
                     **{self.target_id(t): 1 for t in item.confirmed}}
        return ResolvedItem(query=item.query, item_id=res.item_id, name=res.name,
                            features=res.features, augmented=res.augmented,
                            descriptors=res.descriptors, phenotypes=res.phenotypes,
                            decisions=decisions)

    def target_id(self, query: str) -> str:
        """A target's id from a symbol, alias or id.

        Raises:
            LookupError: unknown or ambiguous (the message lists the candidates).
        """
        try:
            return self.genes.resolve(query).gene_id
        except GeneLookupError as exc:
            raise LookupError(str(exc)) from None

    def _disease(self, query: str) -> ResolvedItem:
        kn = self.knowledge
        text = query.strip()
        m = _LABEL_CUI.search(text)
        key = m.group(1) if m else text
        if kn.diseases is None:
            return self._catalog_disease(query, key, None)
        try:
            rec = kn.resolve_disease(key)[0]
        except DiseaseNotFoundError as exc:
            return self._catalog_disease(query, key, exc)
        terms = kn.phenotypes_of(rec.cui)
        aug, desc = _curated_text(curated_features(rec, terms))
        return ResolvedItem(query=query, item_id=rec.cui, name=rec.name,
                            features=self._disease_features(rec.name, rec.cui),
                            augmented=aug, descriptors=desc,
                            phenotypes=tuple(t.id for t in terms))

    def _catalog_disease(self, query: str, key: str, why: Exception | None) -> ResolvedItem:
        """Without curated files (the demo): a disease of the workspace's own catalogue, by
        id or exact name."""
        items = self.ws.dataset.items
        if key in self._items.index:
            item_id = key
        else:
            hits = items.loc[items[NAME].astype(str).str.lower() == key.lower(), ITEM_ID]
            if hits.empty:
                raise LookupError(str(why) if why is not None else
                                  f"No disease named {key!r} in the {self.ws.name} catalogue "
                                  "(set EMERFLOW_DATA for lookup by synonym or id).")
            item_id = str(hits.iloc[0])
        name = _text(self._items.loc[item_id].get(NAME)) or item_id
        return ResolvedItem(query=query, item_id=item_id, name=name,
                            features=self._disease_features(name, item_id))

    def _disease_features(self, name: str, item_id: str) -> dict[str, object]:
        """The New item form as the lookup pre-fills it: type, MeSH classes and semantic type
        from the workspace's own row of the disease (when it has one)."""
        known = self._items.loc[item_id].to_dict() if item_id in self._items.index else {}
        classes = [c for c in _text(known.get("disease_class")).split(MULTI_SEP) if c]
        return self._raw({
            NAME: name,
            "disease_type": _text(known.get("disease_type")),
            "disease_class": MULTI_SEP.join(classes),
            "disease_class_name": (mesh_class_names(MULTI_SEP.join(classes))
                                   if any(c in MESH_CLASS_NAMES for c in classes) else ""),
            "semantic_type": _text(known.get("semantic_type")),
        })

    def _movie(self, query: str) -> ResolvedItem:
        if self._titles is None:
            self._titles = {}
            items = self.ws.dataset.items
            title_col = "title" if "title" in items.columns else NAME
            for iid, title, name in zip(items[ITEM_ID].astype(str), items[title_col].astype(str),
                                        items[NAME].astype(str), strict=True):
                for key in {title.strip().lower(), name.strip().lower()}:
                    self._titles.setdefault(key, []).append(iid)
        text = query.strip()
        hits = self._titles.get(text.lower(), [])
        if text in self._items.index:
            hits = [text]
        if not hits:
            raise LookupError(f"No movie titled {text!r} in the {self.ws.name} catalogue "
                              "(give the catalogue title, e.g. \"Heat (1995)\").")
        if len(hits) > 1:
            names = ", ".join(str(self._items.loc[h].get("title", h)) for h in hits[:5])
            raise LookupError(f"{text!r} names several movies: {names}; give the title with "
                              "its year.")
        row = self._items.loc[hits[0]].to_dict()
        title = _text(row.get("title", row.get(NAME)))
        year = row.get("year")
        genres = set(_text(row.get("genres")).split(MULTI_SEP))
        # as the New movie form stores them: year as an integer, genres in MovieLens order,
        # the catalogue's description when it has one
        features: dict[str, object] = {
            "title": title,
            "year": int(float(year)) if year is not None and _text(year) else None,
            "genres": MULTI_SEP.join(g for g in ML_GENRES if g in genres),
            DESCRIPTION: _text(row.get(DESCRIPTION)),
        }
        raw = self._raw(features)
        raw[NAME] = title
        return ResolvedItem(query=query, item_id=hits[0], name=title, features=raw)

    def _raw(self, features: Mapping[str, object]) -> dict[str, object]:
        """What the dashboard stores and reads back as the raw features: the dataset's item
        features with a value, as text."""
        known = {s.name for s in self.ws.dataset.item_features}
        return {k: _as_text(v) for k, v in features.items()
                if k in known and v not in (None, "", [])}

    # ---- ranking ---------------------------------------------------------------------------
    def predict(self, item: ResolvedItem) -> Prediction:
        """The item's ranking: phase 0, or refined once with all its decisions."""
        ws = self.ws
        pred = ws.predict(item.features, augmented=item.augmented,
                          descriptors=item.descriptors)
        if not item.decisions:
            return pred
        prior = np.asarray(pred.embedding, np.float32)
        emb = ws.refine(prior, item.features, sorted(item.decisions.items()))
        return ws.predict(item.features, augmented=item.augmented,
                          descriptors=item.descriptors, embedding=emb,
                          decisions=item.decisions)

    def table(self, item: ResolvedItem, prediction: Prediction, top: int) -> pd.DataFrame:
        """The dashboard's ranked table with evidence for one item, batch columns first."""
        t = ev.ranked_table(self.ws, prediction, item.decisions, top_n=top, genes=self.genes,
                            active=self.active)
        t = ev.with_evidence(self.ws, prediction, item.decisions, t, index=self.index,
                             hpo_annotations=self.hpo, phenotypes=item.phenotypes,
                             genes=self.genes)
        t.insert(0, ITEM_NAME, item.name)
        t.insert(0, ITEM, item.item_id)
        t.insert(0, QUERY, item.query)
        return t


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip()


def _as_text(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return MULTI_SEP.join(str(v) for v in value)
    return str(value)


def _curated_text(feats: Iterable[Mapping[str, object]]) -> tuple[dict[str, str],
                                                                   dict[str, str]]:
    """The curated values the encoder reads (kept ones, in serialization order)."""
    aug: dict[str, str] = {}
    desc: dict[str, str] = {}
    for f in feats:
        if f.get("keep", True) and f.get("value"):
            name = str(f["name"])
            aug[name] = str(f["value"])
            desc[name] = str(f.get("descriptor") or CURATED_FEATURES.get(name, name))
    return aug, desc


# ---- the batch -------------------------------------------------------------------------------


def _partial_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial.jsonl")


def _load_partial(path: Path, model: str) -> dict[int, dict]:
    """Finished items of an interrupted run of the same workspace model: position -> line."""
    done: dict[int, dict] = {}
    if not path.is_file():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by the interruption
        if doc.get("model_version") == model and isinstance(doc.get("position"), int):
            done[doc["position"]] = doc
    return done


def write_table(table: pd.DataFrame, out: Path, stamp: Mapping[str, object] | None = None
                ) -> None:
    """Write a batch table by extension: TSV/CSV (plain: no comment lines, so ``pd.read_csv``
    reads it as it is; text cells that a spreadsheet would run as a formula get a leading
    ``'``) or JSON (``{"stamp": {...}, "rows": [...]}``).

    Raises:
        ValueError: unknown extension.
    """
    from engine.csv_safety import neutralize_frame

    ext = out.suffix.lower()
    if ext not in FORMATS:
        raise ValueError(f"unknown output type {ext!r}; use {', '.join(FORMATS)}")
    tmp = out.with_name(out.name + ".tmp")
    if ext == ".json":
        doc = {"stamp": dict(stamp or {}), "rows": json.loads(table.to_json(orient="records"))}
        tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    else:
        neutralize_frame(table).to_csv(tmp, sep=FORMATS[ext], index=False, lineterminator="\n")
    tmp.replace(out)


def rank_items(ws: Workspace, items: Sequence[BatchItem | str], *, top: int = DEFAULT_TOP,
               knowledge: Knowledge | None = None, out: str | Path | None = None,
               progress: bool | Callable[[int, int], None] = False) -> BatchResult:
    """Rank every item's targets as the dashboard does; optionally write ``out``.

    Args:
        ws: the workspace (``engine.build.open_workspace``).
        items: :class:`BatchItem` or plain queries.
        top: rows per item (the dashboard's "Top N").
        knowledge: the curated files (``Knowledge.load(sources_from_env())``); needed to
            resolve diseases by name or id and for aliases, HPO phenotypes and GDA scores.
        out: a ``.tsv``, ``.csv`` or ``.json`` path; finished items are checkpointed beside it
            and skipped when the same call is rerun after an interruption.
        progress: True for a tqdm bar, or a callable ``(done, total)``.

    Returns:
        :class:`BatchResult`; items that cannot be resolved are listed in ``errors`` and left
        out of the table.

    Raises:
        ValueError: ``top`` below 1 or an unknown output extension.
    """
    if top < 1:
        raise ValueError(f"top must be >= 1, got {top}")
    specs = [BatchItem(i) if isinstance(i, str) else i for i in items]
    out_path = Path(out) if out is not None else None
    if out_path is not None and out_path.suffix.lower() not in FORMATS:
        raise ValueError(f"unknown output type {out_path.suffix!r}; use {', '.join(FORMATS)}")
    ctx = BatchContext(ws, knowledge)
    partial = _partial_path(out_path) if out_path is not None else None
    done = _load_partial(partial, ws.model_version) if partial is not None else {}
    frames: list[pd.DataFrame | None] = [None] * len(specs)
    errors: dict[str, str] = {}
    resumed = 0
    for pos, doc in done.items():
        if pos < len(specs) and doc.get("query") == specs[pos].query:
            resumed += 1
            if "error" in doc:
                errors[specs[pos].query] = doc["error"]
            else:
                frames[pos] = pd.DataFrame(doc["rows"], columns=doc["columns"])
    todo = [p for p in range(len(specs)) if p not in done or done[p].get("query")
            != specs[p].query]
    bar = None
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(total=len(specs), initial=len(specs) - len(todo), unit="item",
                   desc=f"rank {ws.name}")
    fh = partial.open("a", encoding="utf-8") if partial is not None else None
    try:
        for n, pos in enumerate(todo, start=1):
            spec = specs[pos]
            line: dict[str, object] = {"position": pos, "query": spec.query,
                                       "model_version": ws.model_version}
            try:
                item = ctx.resolve(spec)
                frame = ctx.table(item, ctx.predict(item), top)
            except (LookupError, ValueError) as exc:
                errors[spec.query] = str(exc)
                line["error"] = str(exc)
            else:
                frames[pos] = frame
                line["columns"] = list(frame.columns)
                line["rows"] = json.loads(frame.to_json(orient="values"))
            if fh is not None:
                fh.write(json.dumps(line) + "\n")
                fh.flush()
            if bar is not None:
                bar.update(1)
            elif callable(progress):
                progress(len(specs) - len(todo) + n, len(specs))
    finally:
        if fh is not None:
            fh.close()
        if bar is not None:
            bar.close()
    kept = [f for f in frames if f is not None]
    table = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame(columns=BATCH_COLUMNS)
    if out_path is not None:
        stamp = {"workspace": ws.name, "model_version": ws.model_version,
                 "encoder": ws.config.encoder.model, "top": top, "items": len(specs),
                 "errors": errors}
        write_table(table, out_path, stamp)
        if partial is not None and partial.exists():
            partial.unlink()
    return BatchResult(table=table, errors=errors, resumed=resumed)


__all__ = ["BATCH_COLUMNS", "DEFAULT_TOP", "BatchContext", "BatchItem", "BatchResult",
           "ResolvedItem", "rank_items", "read_items", "split_targets",
           "write_table"]
