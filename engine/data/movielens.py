"""Loader for MovieLens 1M in the original GroupLens format (``::``-separated ``.dat`` files).

Only a partial ratings file exists in the shared data (the first 487,650 lines of
``ratings.dat``); the loader reads the full file identically, plain or gzipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from engine.data.base import Dataset
from engine.data.errors import DataFormatError, MissingDataFileError, read_table
from engine.schema import ITEM_ID, LABEL, MOVIE, MULTI_SEP, NAME, ORDER, TARGET_ID, FeatureSpec

FULL_NAME = "movielens-1m"
PARTIAL_NAME = "movielens-1m-partial"
PARTIAL_DIR = "partial_ratings_prefix"

#: A rating at or above this value is a positive (label 1).
POSITIVE_RATING = 4

#: ML-1M age codes -> the ranges documented in the GroupLens README.
AGE_LABELS: dict[int, str] = {
    1: "Under 18",
    18: "18-24",
    25: "25-34",
    35: "35-44",
    45: "45-49",
    50: "50-55",
    56: "56+",
}

#: ML-1M occupation codes -> the labels documented in the GroupLens README.
OCCUPATION_LABELS: dict[int, str] = {
    0: "other",
    1: "academic/educator",
    2: "artist",
    3: "clerical/admin",
    4: "college/grad student",
    5: "customer service",
    6: "doctor/health care",
    7: "executive/managerial",
    8: "farmer",
    9: "homemaker",
    10: "K-12 student",
    11: "lawyer",
    12: "programmer",
    13: "retired",
    14: "sales/marketing",
    15: "scientist",
    16: "self-employed",
    17: "technician/engineer",
    18: "tradesman/craftsman",
    19: "unemployed",
    20: "writer",
}

GENDER_LABELS: dict[str, str] = {"M": "male", "F": "female"}

#: Item (movie) features.
ITEM_FEATURES: list[FeatureSpec] = [
    FeatureSpec("title", "text", "Title", backbone=False),
    FeatureSpec("year", "numeric", "Year"),
    FeatureSpec("genres", "multi", "Genres"),
]

#: Target (user) features; ``user_key`` is the user ID as a categorical field for the backbone.
TARGET_FEATURES: list[FeatureSpec] = [
    FeatureSpec("user_key", "categorical", "User ID", text=False),
    FeatureSpec("gender", "categorical", "Gender"),
    FeatureSpec("age", "categorical", "Age"),
    FeatureSpec("occupation", "categorical", "Occupation"),
    FeatureSpec("zip", "categorical", "ZIP code prefix"),
]

_RATINGS_WHAT = "MovieLens ratings, UserID::MovieID::Rating::Timestamp per line"
_MOVIES_WHAT = "MovieLens movies, MovieID::Title::Genres per line (latin-1)"
_USERS_WHAT = "MovieLens users, UserID::Gender::Age::Occupation::Zip-code per line"


def find_ratings(root: Path) -> tuple[Path, str]:
    """The ratings file under ``root`` and the dataset name it implies.

    Prefers a full ``ratings.dat`` (or ``ratings.dat.gz``) -> ``movielens-1m``; otherwise
    ``partial_ratings_prefix/ratings.dat.gz`` -> ``movielens-1m-partial``.

    Raises:
        MissingDataFileError: none of them exists.
    """
    root = Path(root)
    for candidate in (root / "ratings.dat", root / "ratings.dat.gz"):
        if candidate.is_file():
            return candidate, FULL_NAME
    for candidate in (root / PARTIAL_DIR / "ratings.dat.gz", root / PARTIAL_DIR / "ratings.dat"):
        if candidate.is_file():
            return candidate, PARTIAL_NAME
    raise MissingDataFileError(
        root / "ratings.dat", _RATINGS_WHAT + " (or " + PARTIAL_DIR + "/ratings.dat.gz)"
    )


def _read_ratings(path: Path) -> tuple[pd.DataFrame, str]:
    """Validated interactions (item_id, target_id, label, order) and the file's sha256."""
    raw = read_table(path, what=_RATINGS_WHAT, sep="::", names=["user", "movie", "rating", "ts"])
    users = raw.ints("user", "UserID")
    movies = raw.ints("movie", "MovieID")
    ratings = raw.ints("rating", "Rating")
    bad = ~ratings.between(1, 5)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise raw.fail(row, f"Rating must be a whole number 1-5, got {int(ratings.iloc[row])}")
    stamps = raw.ints("ts", "Timestamp")
    frame = pd.DataFrame(
        {
            ITEM_ID: movies.astype(str),
            TARGET_ID: users.astype(str),
            LABEL: (ratings >= POSITIVE_RATING).astype("int8"),
            ORDER: stamps,
        }
    )
    return frame, raw.sha256


def _read_movies(path: Path) -> tuple[pd.DataFrame, str]:
    """Movies table (item_id, name, title, year, genres) and the file's sha256."""
    raw = read_table(
        path, what=_MOVIES_WHAT, sep="::", names=["movie", "title", "genres"], encoding="latin-1"
    )
    ids = raw.ints("movie", "MovieID")
    dup = ids.duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise raw.fail(row, f"MovieID {int(ids.iloc[row])} appears twice")
    title = raw.frame["title"].str.strip()
    parts = title.str.extract(r"^(?P<name>.*?)\s*\((?P<year>\d{4})\)\s*$")
    name = parts["name"].fillna(title)
    genres = raw.frame["genres"].str.strip().str.split("|").str.join(MULTI_SEP)
    items = pd.DataFrame(
        {
            ITEM_ID: ids.astype(str),
            NAME: name,
            "title": title,
            "year": pd.to_numeric(parts["year"]).astype("float64"),
            "genres": genres,
        }
    )
    return items, raw.sha256


def _read_users(path: Path) -> tuple[pd.DataFrame, str]:
    """Users table with readable gender/age/occupation labels and the ZIP prefix."""
    raw = read_table(
        path, what=_USERS_WHAT, sep="::", names=["user", "gender", "age", "occupation", "zip"]
    )
    ids = raw.ints("user", "UserID")
    ages = raw.ints("age", "Age code")
    occupations = raw.ints("occupation", "Occupation code")
    age_labels = ages.map(AGE_LABELS)
    if age_labels.isna().any():
        row = int(np.flatnonzero(age_labels.isna().to_numpy())[0])
        raise raw.fail(
            row, f"Age code must be one of {sorted(AGE_LABELS)}, got {int(ages.iloc[row])}"
        )
    occ_labels = occupations.map(OCCUPATION_LABELS)
    if occ_labels.isna().any():
        row = int(np.flatnonzero(occ_labels.isna().to_numpy())[0])
        raise raw.fail(row, f"Occupation code must be 0-20, got {int(occupations.iloc[row])}")
    gender = raw.frame["gender"].str.strip()
    gender_labels = gender.map(GENDER_LABELS)
    if gender_labels.isna().any():
        row = int(np.flatnonzero(gender_labels.isna().to_numpy())[0])
        raise raw.fail(row, f"Gender must be M or F, got {gender.iloc[row]!r}")
    target_ids = ids.astype(str)
    targets = pd.DataFrame(
        {
            TARGET_ID: target_ids,
            NAME: "user " + target_ids,
            "user_key": target_ids,
            "gender": gender_labels,
            "age": age_labels,
            "occupation": occ_labels,
            "zip": raw.frame["zip"].str.strip().str[:3],
        }
    )
    return targets, raw.sha256


def load_movielens(
    root: Path, ratings_path: Path | None = None, name: str | None = None
) -> Dataset:
    """Load MovieLens 1M (full or partial ratings) as a :class:`Dataset`.

    Args:
        root: folder holding ``movies.dat``, ``users.dat`` and the ratings (see
            :func:`find_ratings`).
        ratings_path: an explicit ratings file (plain or ``.gz``); overrides the search.
        name: dataset name; default ``movielens-1m-partial`` for the partial prefix file,
            else ``movielens-1m``.

    Returns:
        Items = movies (all of ``movies.dat``), targets = users (all of ``users.dat``),
        interactions = every rating with label ``rating >= 4`` and order = timestamp.

    Raises:
        MissingDataFileError: a file is missing.
        DataFormatError: a malformed line (message names file and line), or a rating that
            references a movie or user absent from ``movies.dat`` / ``users.dat``.
    """
    root = Path(root)
    if ratings_path is None:
        ratings_path, default_name = find_ratings(root)
    else:
        ratings_path = Path(ratings_path)
        default_name = PARTIAL_NAME if ratings_path.parent.name == PARTIAL_DIR else FULL_NAME
    interactions, ratings_sha = _read_ratings(ratings_path)
    items, movies_sha = _read_movies(root / "movies.dat")
    targets, users_sha = _read_users(root / "users.dat")
    for column, table, what in ((ITEM_ID, items, "movies.dat"), (TARGET_ID, targets, "users.dat")):
        unknown = ~interactions[column].isin(table[column])
        if unknown.any():
            row = int(np.flatnonzero(unknown.to_numpy())[0])
            raise DataFormatError(
                ratings_path,
                f"{column} {interactions[column].iloc[row]} is not listed in {what}",
                line=row + 1,
            )
    return Dataset(
        name=name or default_name,
        domain=MOVIE,
        items=items,
        targets=targets,
        interactions=interactions,
        item_features=list(ITEM_FEATURES),
        target_features=list(TARGET_FEATURES),
        inputs={
            ratings_path.name: ratings_sha,
            "movies.dat": movies_sha,
            "users.dat": users_sha,
        },
    )
