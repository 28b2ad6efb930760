"""DisGeNET loader: fixture in the real v7/NCBI/HGNC/HPA formats, malformed lines, real files."""

from __future__ import annotations

import gzip
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from engine.data.disgenet import (
    DROPPED_PROTEIN_CLASSES,
    MISSING_YEAR_KEY,
    ORDER_GENE_FACTOR,
    find_disgenet_files,
    load_disgenet,
    load_disgenet_dir,
)
from engine.data.errors import DataFormatError, MissingDataFileError
from engine.data.protocol import DISGENET_PROTOCOL, split_dataset
from engine.schema import DESCRIPTION, ITEM_ID, LABEL, MULTI_SEP, NAME, ORDER, TARGET_ID

GDA = Path("disgenet") / "curated_gene_disease_associations.tsv.gz"


@pytest.fixture()
def dg_dir(fixtures_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the DisGeNET fixture folder (shared-data layout)."""
    target = tmp_path / "dg"
    shutil.copytree(fixtures_dir / "disgenet", target)
    return target


def _edit_gda(root: Path, edit) -> Path:
    path = root / GDA
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    edit(lines)
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


def _set_field(line: str, index: int, value: str) -> str:
    fields = line.split("\t")
    fields[index] = value
    return "\t".join(fields)


def test_fixture_loads(fixtures_dir: Path) -> None:
    ds = load_disgenet_dir(fixtures_dir / "disgenet")
    assert ds.name == "disgenet-curated" and ds.domain == "disease" and ds.positives_only
    assert len(ds.interactions) == 32 and len(ds.items) == 6 and len(ds.targets) == 18
    assert (ds.interactions[LABEL] == 1).all()
    assert set(ds.inputs) == {
        "curated_gene_disease_associations.tsv.gz",
        "Homo_sapiens.gene_info.gz",
        "hgnc_complete_set.txt.gz",
        "proteinatlas.tsv.zip",
    }
    genes = ds.targets.set_index(TARGET_ID)
    assert "1" in genes.index and genes.index.str.strip().equals(genes.index)  # padding stripped
    assert genes.loc["7157", NAME] == "TP53" and genes.loc["7157", "gene_key"] == "7157"
    assert genes.loc["7157", "gene_type"] == "protein-coding"
    assert genes.loc["3260", "gene_type"] == "other"
    assert genes.loc["3260", DESCRIPTION] == "human papillomavirus (type 18) integration site 1"
    assert not {"dsi", "dpi", "DSI", "DPI"} & set(genes.columns)  # never read (protocol)
    assert genes.loc["25", "protein_class"] == MULTI_SEP.join(
        ["Enzymes", "FDA approved drug targets", "Predicted intracellular proteins"]
    )
    assert genes.loc["348", "protein_class"] == MULTI_SEP.join(
        ["Plasma proteins", "Predicted secreted proteins"]
    )
    assert genes.loc["10", "protein_class"] == ""  # not in HPA
    every_class = set(MULTI_SEP.join(genes["protein_class"]).split(MULTI_SEP)) - {""}
    assert not every_class & DROPPED_PROTEIN_CLASSES
    diseases = ds.items.set_index(ITEM_ID)
    assert diseases.loc["C0006142", "disease_class"] == "C04" + MULTI_SEP + "C17"
    assert diseases.loc["C3887947", "disease_class"] == ""
    assert diseases.loc["C0002395", NAME] == "Alzheimer's Disease"
    specs = {s.name: s for s in ds.target_features}
    assert specs["gene_key"].kind == "categorical" and specs["gene_key"].backbone
    assert specs[DESCRIPTION].kind == "text" and not specs[DESCRIPTION].backbone
    assert specs["protein_class"].kind == "multi"


def test_order_year_then_gene_with_missing_years_last(fixtures_dir: Path) -> None:
    ds = load_disgenet_dir(fixtures_dir / "disgenet")
    inter = ds.interactions
    gene = inter[TARGET_ID].astype(int)
    year = inter["year_initial"].fillna(MISSING_YEAR_KEY).astype(int)
    assert (inter[ORDER] == year * ORDER_GENE_FACTOR + gene).all()
    assert inter["year_initial"].isna().any()
    ranked = inter.sort_values(ORDER)
    missing = ranked["year_initial"].isna().to_numpy()
    for _, group in ranked.groupby(ITEM_ID):
        years = group["year_initial"]
        assert years.isna().to_numpy().tolist() == sorted(years.isna().to_numpy().tolist())
    assert missing.any()


def test_gda_only_and_explicit_paths(fixtures_dir: Path) -> None:
    ds = load_disgenet(fixtures_dir / "disgenet" / GDA, name="x")
    assert ds.name == "x" and "protein_class" not in ds.targets.columns
    assert {s.name for s in ds.target_features} == {"gene_key", "symbol"}
    with pytest.raises(ValueError, match="hgnc"):
        load_disgenet(
            fixtures_dir / "disgenet" / GDA,
            hpa_path=fixtures_dir / "disgenet" / "hpa" / "proteinatlas.tsv.zip",
        )


def test_all_file_is_accepted(dg_dir: Path) -> None:
    (dg_dir / GDA).rename(dg_dir / "disgenet" / "all_gene_disease_associations.tsv.gz")
    files = find_disgenet_files(dg_dir)
    assert files.gda.name.startswith("all_")
    ds = load_disgenet_dir(dg_dir)
    assert ds.name == "disgenet-all" and len(ds.interactions) == 32


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda ls: ls.__setitem__(5, ls[5] + "\textra"), "expected 16 fields"),
        (lambda ls: ls.__setitem__(5, ls[5].split("\t", 1)[1]), "expected 16 fields"),
        (
            lambda ls: ls.__setitem__(5, "    12x" + ls[5][ls[5].index("\t") :]),
            "geneId (NCBI gene id) must be an integer",
        ),
        (
            lambda ls: ls.__setitem__(5, _set_field(ls[5], 13, "   ?")),
            "NofPmids must be an integer",
        ),
        (
            lambda ls: ls.__setitem__(5, _set_field(ls[5], 11, "19x9")),
            "YearInitial must be an integer",
        ),
    ],
)
def test_malformed_gda_line_names_file_and_line(dg_dir: Path, edit, needle: str) -> None:
    path = _edit_gda(dg_dir, edit)
    with pytest.raises(DataFormatError) as info:
        load_disgenet_dir(dg_dir)
    assert (
        str(path) in str(info.value) and "line 6" in str(info.value) and needle in str(info.value)
    )


def test_missing_header_column(dg_dir: Path) -> None:
    _edit_gda(dg_dir, lambda ls: ls.__setitem__(0, ls[0].replace("diseaseId", "disease")))
    with pytest.raises(DataFormatError, match=r"line 1: header lacks columns \['diseaseId'\]"):
        load_disgenet_dir(dg_dir)


def test_missing_files(dg_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(MissingDataFileError, match="DisGeNET v7 gene-disease associations"):
        load_disgenet_dir(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="gene_info"):
        load_disgenet(dg_dir / GDA, gene_info_path=tmp_path / "Homo_sapiens.gene_info.gz")
    (dg_dir / "hpa" / "proteinatlas.tsv.zip").unlink()
    assert "protein_class" not in load_disgenet_dir(dg_dir).targets.columns


@pytest.mark.needs_data
def test_real_files(shared_data: Path) -> None:
    start = time.perf_counter()
    ds = load_disgenet_dir(shared_data)
    assert time.perf_counter() - start < 30
    assert len(ds.interactions) == 84_038 and len(ds.items) == 11_181 and len(ds.targets) == 9_703
    assert ds.inputs["curated_gene_disease_associations.tsv.gz"] == (
        "1530e5b9ac5642d817d883adb24ff6e008b06c46486c2b558d7251df4bf158b2"
    )
    assert ds.interactions["year_initial"].isna().sum() == 4_383
    assert not {"dsi", "dpi"} & set(ds.targets.columns)
    assert (ds.targets["protein_class"] != "").sum() == 9_146
    assert ds.targets["gene_type"].ne("unknown").sum() > 9_600
    classes = set(MULTI_SEP.join(ds.targets["protein_class"]).split(MULTI_SEP)) - {""}
    assert not classes & DROPPED_PROTEIN_CLASSES and "Enzymes" in classes
    summary = split_dataset(ds, DISGENET_PROTOCOL).summary()
    assert summary["old_items"] == 414 and summary["train_positives"] == 46_867
    assert summary["new_items"] == 520 and summary["new_positives"] == 12_652
    assert summary["test_positives"] == 6_412


def test_no_feature_reads_the_files_dsi_or_dpi(dg_dir: Path) -> None:
    """DSI/DPI are computed by DisGeNET over its whole database (new diseases' test pairs
    included): scrambling them in the file must change nothing the engine sees."""
    from engine.data.disgenet import GDA_COLUMNS, UNREAD_GDA_COLUMNS

    before = load_disgenet_dir(dg_dir)
    index = {c: GDA_COLUMNS.index(c) for c in UNREAD_GDA_COLUMNS}

    def scramble(lines: list[str]) -> None:
        for k in range(1, len(lines)):
            for i in index.values():
                lines[k] = _set_field(lines[k], i, "0.999" if k % 2 else "")

    _edit_gda(dg_dir, scramble)
    after = load_disgenet_dir(dg_dir)
    assert before.inputs != after.inputs  # the file did change
    pd.testing.assert_frame_equal(before.targets, after.targets)
    pd.testing.assert_frame_equal(before.items, after.items)
    pd.testing.assert_frame_equal(before.interactions, after.interactions)
    assert before.target_features == after.target_features
    names = {s.name.lower() for s in after.target_features + after.item_features}
    assert not names & {"dsi", "dpi"}
