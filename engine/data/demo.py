"""Seeded synthetic catalogs for a first look without external files: "demo (synthetic)".

Movies: users with an age band, gender and occupation; movies with a title, year, genres and
a one-sentence description. Clicks are driven by latent tastes over themes that the genres and
the description reveal, so text carries real signal for new movies.

Diseases: genes with a symbol and protein class belonging to latent pathways; diseases with a
name, type, MeSH-like class, semantic type and a description naming their pathway and organ
system; associations are drawn mostly from the disease's pathways.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.data.base import Dataset
from engine.schema import (
    DESCRIPTION,
    DISEASE,
    ITEM_ID,
    LABEL,
    MOVIE,
    MULTI_SEP,
    NAME,
    ORDER,
    TARGET_ID,
    FeatureSpec,
)

DEMO_MOVIES = "demo-movies"
DEMO_DISEASES = "demo-diseases"
DEMO_DATASETS = (DEMO_MOVIES, DEMO_DISEASES)

ML_GENRES = (
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)

#: theme -> (genres, description phrases, title words)
_MOVIE_THEMES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "space": (
        ("Sci-Fi", "Adventure", "Action"),
        (
            "a starship crew stranded beyond the galaxy",
            "alien contact on a distant planet",
            "robots rebelling on an orbital station",
        ),
        ("Star", "Orbit", "Nebula", "Android", "Galaxy"),
    ),
    "family": (
        ("Children's", "Animation", "Comedy", "Musical"),
        (
            "a talking dog who helps a lonely kid",
            "a family road trip full of silly mishaps",
            "singing animals saving their forest home",
        ),
        ("Buddy", "Puppy", "Holiday", "Magic", "Tooth"),
    ),
    "romance": (
        ("Romance", "Drama", "Comedy"),
        (
            "two strangers falling in love in Paris",
            "a wedding planner torn between suitors",
            "letters that reunite old sweethearts",
        ),
        ("Love", "Heart", "Kiss", "Summer", "Wedding"),
    ),
    "crime": (
        ("Crime", "Thriller", "Film-Noir", "Mystery"),
        (
            "a detective hunting a serial killer",
            "a bank heist that goes terribly wrong",
            "mobsters fighting over the city's docks",
        ),
        ("Heist", "Shadow", "Gun", "Street", "Deal"),
    ),
    "horror": (
        ("Horror", "Thriller", "Mystery"),
        (
            "a haunted house that traps its visitors",
            "a masked slasher stalking teenagers",
            "a cursed tape that kills whoever watches",
        ),
        ("Scream", "Night", "Blood", "Grave", "Curse"),
    ),
    "history": (
        ("War", "Drama", "Western", "Documentary"),
        (
            "soldiers surviving the beaches of Normandy",
            "a cowboy defending a frontier town",
            "the true story of a civil-rights march",
        ),
        ("Glory", "Battle", "Frontier", "Honor", "Valley"),
    ),
}
_AGE_BANDS = ("Under 18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+")
_OCCUPATIONS = (
    "student",
    "engineer",
    "artist",
    "doctor",
    "writer",
    "lawyer",
    "retired",
    "sales",
    "technician",
    "educator",
    "homemaker",
    "scientist",
)

#: pathway -> (organ system / MeSH-like class, phrases, name words)
_PATHWAYS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "Wnt signaling": (
        "Musculoskeletal Diseases",
        ("bone density", "skeletal growth"),
        ("osteo", "skeletal dysplasia"),
    ),
    "ion channel conduction": (
        "Nervous System Diseases",
        ("seizures", "neuronal excitability"),
        ("epileptic encephalopathy", "channelopathy"),
    ),
    "lipid metabolism": (
        "Nutritional and Metabolic Diseases",
        ("cholesterol", "fatty liver"),
        ("hyperlipidemia", "lipodystrophy"),
    ),
    "DNA repair": (
        "Neoplasms",
        ("tumour predisposition", "genome instability"),
        ("carcinoma", "cancer syndrome"),
    ),
    "immune signaling": (
        "Immune System Diseases",
        ("autoimmunity", "inflammation"),
        ("immunodeficiency", "autoinflammatory syndrome"),
    ),
    "cardiac sarcomere": (
        "Cardiovascular Diseases",
        ("heart muscle", "arrhythmia"),
        ("cardiomyopathy", "heart failure"),
    ),
    "cilia assembly": (
        "Congenital Abnormalities",
        ("kidney cysts", "retinal degeneration"),
        ("ciliopathy", "polycystic kidney disease"),
    ),
    "mitochondrial respiration": (
        "Nervous System Diseases",
        ("muscle weakness", "lactic acidosis"),
        ("mitochondrial myopathy", "encephalomyopathy"),
    ),
    "hemoglobin synthesis": (
        "Hemic and Lymphatic Diseases",
        ("anemia", "red blood cells"),
        ("thalassemia", "anemia"),
    ),
    "insulin signaling": (
        "Endocrine System Diseases",
        ("blood glucose", "insulin resistance"),
        ("diabetes", "hyperinsulinism"),
    ),
}
_PROTEIN_CLASSES = (
    "Enzymes",
    "Transporters",
    "Transcription factors",
    "Membrane proteins",
    "Kinases",
    "Receptors",
    "Structural proteins",
    "Secreted proteins",
)
_DISEASE_TYPES = ("disease", "phenotype", "group")
_SEMANTIC = (
    "Disease or Syndrome",
    "Neoplastic Process",
    "Congenital Abnormality",
    "Finding",
    "Pathologic Function",
)


def _counts(
    rng: np.random.Generator,
    n: int,
    old_share: float,
    new_range: tuple[int, int],
    old_range: tuple[int, int],
) -> np.ndarray:
    """Interaction counts: ~old_share above the old threshold, most others in the new band."""
    kind = rng.random(n)
    old = rng.integers(old_range[0], old_range[1] + 1, n)
    new = rng.integers(new_range[0], new_range[1] + 1, n)
    few = rng.integers(3, new_range[0], n)
    return np.where(kind < old_share, old, np.where(kind < 0.92, new, few))


def demo_movies(seed: int = 0, n_users: int = 1000, n_movies: int = 600) -> Dataset:
    """A synthetic MovieLens-like catalog (labelled "demo (synthetic)")."""
    rng = np.random.default_rng(seed)
    themes = list(_MOVIE_THEMES)
    k = len(themes)
    # users ----------------------------------------------------------------------------------
    age = rng.integers(0, len(_AGE_BANDS), n_users)
    gender = rng.choice(["F", "M"], n_users)
    occ = rng.integers(0, len(_OCCUPATIONS), n_users)
    group_pref = rng.normal(0, 1.0, (len(_AGE_BANDS), 2, k))
    occ_pref = rng.normal(0, 0.5, (len(_OCCUPATIONS), k))
    taste = (
        group_pref[age, (gender == "M").astype(int)]
        + occ_pref[occ]
        + rng.normal(0, 0.7, (n_users, k))
    )
    activity = rng.lognormal(0, 0.6, n_users)
    users = pd.DataFrame(
        {
            TARGET_ID: [str(u + 1) for u in range(n_users)],
            NAME: [f"user {u + 1}" for u in range(n_users)],
            "user_key": [str(u + 1) for u in range(n_users)],
            "gender": gender,
            "age": [_AGE_BANDS[a] for a in age],
            "occupation": [_OCCUPATIONS[o] for o in occ],
        }
    )
    # movies ---------------------------------------------------------------------------------
    primary = rng.integers(0, k, n_movies)
    secondary = rng.integers(0, k, n_movies)
    latent = (
        np.eye(k)[primary] * 1.2 + np.eye(k)[secondary] * 0.5 + rng.normal(0, 0.25, (n_movies, k))
    )
    quality = rng.normal(0, 0.6, n_movies)
    rows = []
    for m in range(n_movies):
        t1, t2 = themes[primary[m]], themes[secondary[m]]
        g1, d1, w1 = _MOVIE_THEMES[t1]
        g2, _, w2 = _MOVIE_THEMES[t2]
        genres = sorted(
            {*rng.choice(g1, size=min(2, len(g1)), replace=False), g2[rng.integers(len(g2))]}
        )
        title = f"{w1[rng.integers(len(w1))]} {w2[rng.integers(len(w2))]} {m + 1}"
        rows.append(
            {
                ITEM_ID: f"M{m + 1:04d}",
                NAME: title,
                "title": title,
                "year": int(rng.integers(1960, 2001)),
                "genres": MULTI_SEP.join(genres),
                DESCRIPTION: f"A film about {d1[rng.integers(len(d1))]}.",
            }
        )
    movies = pd.DataFrame(rows)
    # clicks ---------------------------------------------------------------------------------
    counts = _counts(rng, n_movies, 0.42, (25, 60), (61, 260))
    p_user = activity / activity.sum()
    inter = []
    for m in range(n_movies):
        us = rng.choice(n_users, size=counts[m], replace=False, p=p_user)
        logit = 2.5 * (taste[us] @ latent[m]) / np.sqrt(k) + quality[m] - 0.1
        lab = (rng.random(len(us)) < 1 / (1 + np.exp(-logit))).astype(int)
        ts = np.sort(rng.integers(9.5e8, 9.9e8, len(us)))
        inter.append(
            pd.DataFrame(
                {
                    ITEM_ID: movies[ITEM_ID][m],
                    TARGET_ID: users[TARGET_ID].to_numpy()[us],
                    LABEL: lab,
                    ORDER: ts,
                }
            )
        )
    interactions = pd.concat(inter, ignore_index=True)
    return Dataset(
        name=DEMO_MOVIES,
        domain=MOVIE,
        items=movies,
        targets=users,
        interactions=interactions,
        item_features=[
            FeatureSpec("title", "text", "Title", backbone=False),
            FeatureSpec("year", "numeric", "Year"),
            FeatureSpec("genres", "multi", "Genres"),
            FeatureSpec(DESCRIPTION, "text", "Description", backbone=False),
        ],
        target_features=[
            FeatureSpec("user_key", "categorical", "User", text=False),
            FeatureSpec("gender", "categorical", "Gender", text=False),
            FeatureSpec("age", "categorical", "Age", text=False),
            FeatureSpec("occupation", "categorical", "Occupation", text=False),
        ],
        synthetic=True,
    )


def demo_diseases(seed: int = 0, n_genes: int = 2000, n_diseases: int = 600) -> Dataset:
    """A synthetic DisGeNET-like catalog (labelled "demo (synthetic)"); positives only."""
    rng = np.random.default_rng(seed + 1)
    pathways = list(_PATHWAYS)
    n_pw = len(pathways)
    gene_pw = rng.integers(0, n_pw, n_genes)
    gene_pw2 = np.where(rng.random(n_genes) < 0.15, rng.integers(0, n_pw, n_genes), gene_pw)
    pw_class = rng.integers(0, len(_PROTEIN_CLASSES), (n_pw, 2))
    gene_class = np.where(
        rng.random(n_genes) < 0.7,
        pw_class[gene_pw, rng.integers(0, 2, n_genes)],
        rng.integers(0, len(_PROTEIN_CLASSES), n_genes),
    )
    letters = np.array(list("ABCDEFGHIKLMNPRSTVWXYZ"))
    symbols = []
    seen: set[str] = set()
    while len(symbols) < n_genes:
        s = "".join(rng.choice(letters, 3)) + str(rng.integers(1, 30))
        if s not in seen:
            seen.add(s)
            symbols.append(s)
    popularity = rng.lognormal(0, 0.8, n_genes)
    genes = pd.DataFrame(
        {
            TARGET_ID: [str(100000 + g) for g in range(n_genes)],
            NAME: symbols,
            "symbol": symbols,
            "gene_key": [str(100000 + g) for g in range(n_genes)],
            "protein_class": [_PROTEIN_CLASSES[c] for c in gene_class],
        }
    )
    members = [np.flatnonzero((gene_pw == p) | (gene_pw2 == p)) for p in range(n_pw)]
    primary = rng.integers(0, n_pw, n_diseases)
    secondary = np.where(rng.random(n_diseases) < 0.3, rng.integers(0, n_pw, n_diseases), primary)
    rows = []
    for d in range(n_diseases):
        pw = pathways[primary[d]]
        system, phrases, words = _PATHWAYS[pw]
        name = f"{words[rng.integers(len(words))].capitalize()} type {d + 1}"
        classes = {system}
        if secondary[d] != primary[d]:
            classes.add(_PATHWAYS[pathways[secondary[d]]][0])
        rows.append(
            {
                ITEM_ID: f"D{d + 1:04d}",
                NAME: name,
                "disease_type": _DISEASE_TYPES[rng.integers(len(_DISEASE_TYPES))],
                "disease_class": MULTI_SEP.join(sorted(classes)),
                "semantic_type": _SEMANTIC[rng.integers(len(_SEMANTIC))],
                DESCRIPTION: (
                    f"A disorder of {pw} affecting {phrases[rng.integers(len(phrases))]}"
                    + (
                        f", with features of {pathways[secondary[d]]}"
                        if secondary[d] != primary[d]
                        else ""
                    )
                    + "."
                ),
            }
        )
    diseases = pd.DataFrame(rows)
    counts = _counts(rng, n_diseases, 0.4, (12, 30), (31, 90))
    inter = []
    for d in range(n_diseases):
        pool = np.union1d(members[primary[d]], members[secondary[d]])
        n_in = int(round(counts[d] * 0.85))
        w = popularity[pool] / popularity[pool].sum()
        chosen = rng.choice(pool, size=min(n_in, len(pool)), replace=False, p=w)
        rest = np.setdiff1d(np.arange(n_genes), chosen)
        w2 = popularity[rest] / popularity[rest].sum()
        extra = rng.choice(rest, size=counts[d] - len(chosen), replace=False, p=w2)
        gs = rng.permutation(np.concatenate([chosen, extra]))
        years = np.sort(rng.integers(1990, 2021, len(gs)))
        inter.append(
            pd.DataFrame(
                {
                    ITEM_ID: diseases[ITEM_ID][d],
                    TARGET_ID: genes[TARGET_ID].to_numpy()[gs],
                    LABEL: 1,
                    ORDER: years,
                }
            )
        )
    interactions = pd.concat(inter, ignore_index=True)
    return Dataset(
        name=DEMO_DISEASES,
        domain=DISEASE,
        items=diseases,
        targets=genes,
        interactions=interactions,
        item_features=[
            FeatureSpec(NAME, "text", "Disease name", backbone=False),
            FeatureSpec("disease_type", "categorical", "Disease type"),
            FeatureSpec("disease_class", "multi", "Disease class"),
            FeatureSpec("semantic_type", "categorical", "Semantic type"),
            FeatureSpec(DESCRIPTION, "text", "Description", backbone=False),
        ],
        target_features=[
            FeatureSpec("gene_key", "categorical", "Gene", text=False),
            FeatureSpec("protein_class", "multi", "Protein class", text=False),
        ],
        synthetic=True,
        positives_only=True,
    )


def load_demo(name: str, seed: int = 0) -> Dataset:
    """``demo-movies`` or ``demo-diseases``."""
    if name == DEMO_MOVIES:
        return demo_movies(seed)
    if name == DEMO_DISEASES:
        return demo_diseases(seed)
    raise ValueError(f"unknown demo dataset {name!r}; choose one of {DEMO_DATASETS}")
