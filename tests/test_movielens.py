"""MovieLens loader: fixture in the real ML-1M format, malformed lines, the real partial file."""

from __future__ import annotations

import gzip
import shutil
import time
from pathlib import Path

import pytest

from engine.data.errors import DataFormatError, MissingDataFileError
from engine.data.movielens import FULL_NAME, PARTIAL_NAME, load_movielens
from engine.data.protocol import MOVIELENS_PROTOCOL, split_dataset
from engine.schema import ITEM_ID, LABEL, MULTI_SEP, NAME, ORDER, TARGET_ID


@pytest.fixture()
def ml_dir(fixtures_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the MovieLens fixture folder."""
    target = tmp_path / "ml"
    shutil.copytree(fixtures_dir / "movielens", target)
    return target


def test_fixture_loads(fixtures_dir: Path) -> None:
    ds = load_movielens(fixtures_dir / "movielens")
    assert ds.name == FULL_NAME and ds.domain == "movie"
    assert len(ds.interactions) == 29 and len(ds.items) == 7 and len(ds.targets) == 11
    ratings = [
        int(line.split("::")[2])
        for line in (fixtures_dir / "movielens" / "ratings.dat").read_text().splitlines()
    ]
    assert ds.interactions[LABEL].tolist() == [int(r >= 4) for r in ratings]
    assert ds.interactions[ORDER].dtype.kind == "i"
    assert set(ds.inputs) == {"ratings.dat", "movies.dat", "users.dat"}
    assert all(len(v) == 64 for v in ds.inputs.values())
    items = ds.items.set_index(ITEM_ID)
    assert items.loc["3", NAME] == "American President, The"
    assert items.loc["3", "year"] == 1995
    assert items.loc["4", NAME] == "Café au lait"  # latin-1 decoded
    assert items.loc["1", "genres"] == MULTI_SEP.join(["Animation", "Children's", "Comedy"])
    users = ds.targets.set_index(TARGET_ID)
    assert users.loc["1", "age"] == "Under 18" and users.loc["1", "occupation"] == "K-12 student"
    assert (
        users.loc["11", "age"] == "18-24"
        and users.loc["11", "occupation"] == "college/grad student"
    )
    assert users.loc["11", "zip"] == "981" and users.loc["1", "gender"] == "female"
    assert users.loc["5", "user_key"] == "5" and users.loc["5", NAME] == "user 5"
    specs = {s.name: s for s in ds.target_features}
    assert specs["user_key"].kind == "categorical" and specs["user_key"].backbone
    item_specs = {s.name: s for s in ds.item_features}
    assert not item_specs["title"].backbone and item_specs["year"].backbone
    assert item_specs["genres"].kind == "multi"


def test_partial_gz_is_found_and_named(ml_dir: Path) -> None:
    partial = ml_dir / "partial_ratings_prefix"
    partial.mkdir()
    (partial / "ratings.dat.gz").write_bytes(gzip.compress((ml_dir / "ratings.dat").read_bytes()))
    full = load_movielens(ml_dir)
    (ml_dir / "ratings.dat").unlink()
    ds = load_movielens(ml_dir)
    assert ds.name == PARTIAL_NAME and "ratings.dat.gz" in ds.inputs
    assert ds.interactions.equals(full.interactions)
    assert load_movielens(ml_dir, name="custom").name == "custom"


def test_explicit_gz_full_file(ml_dir: Path, tmp_path: Path) -> None:
    gz = tmp_path / "ratings.dat.gz"
    gz.write_bytes(gzip.compress((ml_dir / "ratings.dat").read_bytes()))
    ds = load_movielens(ml_dir, ratings_path=gz)
    assert ds.name == FULL_NAME and len(ds.interactions) == 29


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("5::3::4", "expected 4 fields"),
        ("5::3::4::978300000::9", "expected 4 fields"),
        ("5x::3::4::978300000", "UserID must be an integer"),
        ("5::3::7::978300000", "Rating must be a whole number 1-5"),
        ("5::3::4.5::978300000", "Rating must be an integer"),
        ("5::3::4::soon", "Timestamp must be an integer"),
        ("", "expected 4 fields"),
    ],
)
def test_malformed_rating_line_names_file_and_line(ml_dir: Path, line: str, needle: str) -> None:
    path = ml_dir / "ratings.dat"
    lines = path.read_text().splitlines()
    lines.insert(6, line)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError) as info:
        load_movielens(ml_dir)
    message = str(info.value)
    assert str(path) in message and "line 7" in message and needle in message
    assert info.value.line == 7


def test_unknown_movie_is_reported(ml_dir: Path) -> None:
    path = ml_dir / "ratings.dat"
    path.write_text(path.read_text() + "3::99::4::978300000\n")
    with pytest.raises(DataFormatError, match=r"line 30: item_id 99 is not listed in movies.dat"):
        load_movielens(ml_dir)


def test_bad_user_codes(ml_dir: Path) -> None:
    path = ml_dir / "users.dat"
    path.write_text(path.read_text().replace("2::M::56::16::70072", "2::M::57::16::70072"))
    with pytest.raises(DataFormatError, match=r"users.dat, line 2: Age code"):
        load_movielens(ml_dir)


def test_missing_files(ml_dir: Path) -> None:
    (ml_dir / "users.dat").unlink()
    with pytest.raises(FileNotFoundError, match="users.dat.*UserID::Gender"):
        load_movielens(ml_dir)
    (ml_dir / "ratings.dat").unlink()
    with pytest.raises(MissingDataFileError, match="ratings"):
        load_movielens(ml_dir)


@pytest.mark.needs_data
def test_real_partial_file(shared_data: Path) -> None:
    start = time.perf_counter()
    ds = load_movielens(shared_data / "movielens-1m")
    assert time.perf_counter() - start < 30
    assert ds.name == PARTIAL_NAME
    assert len(ds.interactions) == 487_650 and len(ds.items) == 3_883 and len(ds.targets) == 6_040
    assert (
        ds.inputs["ratings.dat.gz"]
        == "2fedcf5405373a49df4041e3d3fe1e8db9eacf2c77c209ae1f686ea06b7a16d9"
    )
    assert (
        ds.inputs["movies.dat"]
        == "0140fc2356357c1a851d0f52e893a1e4d3696df632c4141cea8d5bc3d621f0b9"
    )
    assert ds.items["year"].notna().all()
    split = split_dataset(ds, MOVIELENS_PROTOCOL)
    summary = split.summary()
    assert summary["old_items"] == 765 and summary["train_rows"] == 324_415
    assert summary["new_items"] == 1_087 and summary["new_rows"] == 126_325
