"""The settings chosen on the OLD-item validation split, in one place.

``emerflow bench tune --dataset <name>`` (``engine.bench.tune``) tries the same number of
settings per method (``Method.grid``), scores each by validation NDCG@100 (mean over phases
0..III) and writes every trial to ``results/<dataset>/tuning.json``; the chosen settings are
copied here by hand, with the command that produced them (also recorded in results/README.md).
The benchmark (``engine.bench.BenchSettings.for_dataset``) and the dashboard's workspaces
(:func:`emerflow_workspace_config`) read them from this module only; the demo catalogs use the
engine defaults.
"""

from __future__ import annotations

from typing import Any

from engine.config import SHARED_SETTINGS, SharedConfig, WorkspaceConfig

#: Settings for the real datasets, chosen on the OLD-item validation split
#: (``emerflow bench tune``, see results/README.md); the demo catalogs use engine defaults.
#: ``backbone``: BackboneConfig overrides; ``methods``: per-method setting overrides.
DATASET_SETTINGS: dict[str, dict[str, Any]] = {
    # `emerflow bench tune --dataset movielens-1m-partial --methods <all but the LLM/kb
    #  variants> --trials 12` (results/movielens-1m-partial/tuning.json, every trial); the text
    # ablations take the settings tuned for their raw-text method.
    "movielens-1m-partial": {"backbone": {}, "methods": {
        # baselines: the 2026-12-03 rounds of results/README.md (issue 16: count popularity,
        # widened grids; text-cooc and text-ease take their parts' settings and tune the weight);
        # popularity-rate, cooc-knn, ease, text-knn, text-ease, text-cooc from round S1 on the
        # small-item validation set (`--validation-set small`, results/<dataset>/tuning-small.json)
        "popularity": {},
        "popularity-rate": {"prior_strength": 300000.0},
        "item-mean": {},
        "cooc-knn": {"alpha": 0.45, "pop_weight": 0.01},
        "ease": {"lam": 3000.0},
        "text-knn": {"k": 100, "pop_weight": 0.05, "temperature": 0.1},
        "text-cooc": {"k": 100, "pop_weight": 0.05, "temperature": 0.1, "alpha": 0.45,
                      "weight": 10.0},
        "text-ease": {"k": 100, "pop_weight": 0.05, "temperature": 0.1, "lam": 3000.0,
                      "beta": 2.0},
        "backbone": {"refine_lr": 1.0, "refine_steps": 20},
        "metaemb": {"inner_lr": 0.5, "refine_lr": 0.5, "refine_steps": 20},
        "cvar": {"refine_lr": 1.0, "refine_steps": 5},
        "mwuf": {"refine_lr": 1.0, "refine_steps": 5},
        "emerflow-nollm": {"aligner_dropout": 0.3, "aligner_hidden": 256, "inner_lr": 0.2,
                           "refine_lr": 1.0, "refine_steps": 20},
        "emerflow-nowarm": {"aligner_dropout": 0.3, "aligner_hidden": 256, "inner_lr": 0.2,
                            "refine_lr": 1.0, "refine_steps": 20},
        **{name: {"aligner_dropout": 0.3, "aligner_hidden": 256, "inner_lr": 0.2,
                  "refine_lr": 1.0, "refine_steps": 20}
           for name in ("emerflow", "emerflow-augonly")},
        # the shared-space EASE propagation uses the lambda validated for the `ease` baseline
        **{name: {"ease_lam": 5000.0, "beta": 300.0, "negative_weight": 0.2, "rho": 0.5,
                  "step_lr": 1.0, "temperature": 0.05}
           for name in ("emerflow-tt-nollm", "emerflow-tt")},
        # the learned ranker: channel settings from the text-knn and ease rounds (validated)
        # `emerflow bench tune --dataset movielens-1m-partial --methods emerflow-ltr --trials 12
        #  --validation-set small` rounds L3 (LightGBM, validation NDCG@100 .2220;
        # results/movielens-1m-partial/emerflow-ltr-tuning-l3.json) and L4 / L4b (training lists,
        # .2226; emerflow-ltr-tuning-l4b.json) and L6 (item categories: the genre combination,
        # .2236 vs .2226 off / .2224 per genre; emerflow-ltr-tuning-l6.json) and L7 / L7b
        # (learning rate x trees within the build budget of <= 50 trees, `--budget
        # n_estimators=50`: .2 x 50, .2237; L3's .1 x 100 .2236; the best without the budget
        # .2 x 200, .2260, 4x the fit; tuning-small.json), on the items below the new-item
        # minimum
        "emerflow-ltr": {"ltr": {"k": 100, "temperature": 0.1, "ease_lam": 3000.0,
                                 "learning_rate": 0.2, "min_data_in_leaf": 100,
                                 "monotone": True, "n_estimators": 50, "num_leaves": 31,
                                 "candidates": 300, "random_negatives": 30,
                                 "categories": "combination"}},
    }},
    # `emerflow bench tune --dataset disgenet-curated --methods <all but the LLM/kb variants>
    #  --trials 12` (results/disgenet-curated/tuning.json, every trial); the text ablations
    # (emerflow, emerflow-augonly, emerflow-kb; emerflow-tt, emerflow-tt-kb) take the settings
    # tuned for their raw-text method (emerflow-nollm; emerflow-tt-nollm).
    "disgenet-curated": {"backbone": {}, "methods": {
        # baselines: the 2026-12-03 rounds of results/README.md (issue 16: count popularity,
        # widened grids; text-cooc and text-ease take their parts' settings and tune the weight);
        # popularity-rate, cooc-knn, ease, text-knn, text-ease, text-cooc from round S1 on the
        # small-item validation set (`--validation-set small`, results/<dataset>/tuning-small.json)
        "popularity": {},
        "popularity-rate": {"prior_strength": 100.0},
        "item-mean": {},
        "cooc-knn": {"alpha": 0.7, "pop_weight": 0.03},
        "ease": {"lam": 50.0},
        "text-knn": {"k": 100, "pop_weight": 0.05, "temperature": 0.02},
        "text-cooc": {"k": 100, "pop_weight": 0.05, "temperature": 0.02, "alpha": 0.7,
                      "weight": 1.5},
        "text-ease": {"k": 100, "pop_weight": 0.05, "temperature": 0.02, "lam": 50.0,
                      "beta": 3.0},
        "backbone": {"refine_lr": 0.05, "refine_steps": 20},
        "metaemb": {"inner_lr": 0.1, "refine_lr": 0.05, "refine_steps": 5},
        "cvar": {"refine_lr": 0.05, "refine_steps": 20},
        "mwuf": {"refine_lr": 0.05, "refine_steps": 10},
        "emerflow-nollm": {"aligner_dropout": 0.1, "aligner_hidden": 256, "inner_lr": 0.1,
                           "refine_lr": 0.05, "refine_steps": 5},
        "emerflow-nowarm": {"aligner_dropout": 0.1, "aligner_hidden": 256, "inner_lr": 0.1,
                            "refine_lr": 0.05, "refine_steps": 5},
        "emerflow-tt-nollm": {"beta": 100.0, "negative_weight": 0.0, "rho": 1.0, "step_lr": 1.0,
                              "temperature": 0.02},
        **{name: {"aligner_dropout": 0.1, "aligner_hidden": 256, "inner_lr": 0.1,
                  "refine_lr": 0.05, "refine_steps": 5}
           for name in ("emerflow", "emerflow-augonly", "emerflow-kb")},
        **{name: {"beta": 100.0, "negative_weight": 0.0, "rho": 1.0, "step_lr": 1.0,
                  "temperature": 0.02}
           for name in ("emerflow-tt", "emerflow-tt-kb")},
        # the learned ranker: channel settings from the text-knn and ease rounds (validated)
        # `emerflow bench tune --dataset disgenet-curated --methods emerflow-ltr --trials 12
        #  --validation-set small` rounds L3 (LightGBM, validation NDCG@100 .0966 over phases
        # 0-II; results/disgenet-curated/emerflow-ltr-tuning-l3.json) and L4 / L4b (training
        # lists, .1005; emerflow-ltr-tuning-l4b.json), L6 (item categories: per MeSH class,
        # .1011 vs .1005 off / .0959 the class combination; emerflow-ltr-tuning-l6.json) and
        # L7 / L7b (learning rate x trees within the build budget of <= 50 trees, `--budget
        # n_estimators=50`: .1 x 50, .1002; L3's .02 x 200, .1011, is the best without it and
        # takes 4x the fit; tuning-small.json), on the items below the new-item minimum
        "emerflow-ltr": {"ltr": {"k": 100, "temperature": 0.02, "ease_lam": 50.0,
                                 "learning_rate": 0.1, "min_data_in_leaf": 100,
                                 "monotone": False, "n_estimators": 50, "num_leaves": 15,
                                 "candidates": 500, "random_negatives": 100,
                                 "categories": "set"}},
    }},
}


def emerflow_workspace_config(dataset: str, seed: int = 0) -> WorkspaceConfig:
    """The dashboard workspace settings of ``dataset``: engine defaults plus the validated
    settings of the product method (:data:`PRODUCT_METHOD`) from :data:`DATASET_SETTINGS`.
    Plain data: nothing of the benchmark is imported. The demo catalogs use the engine
    defaults."""
    methods = DATASET_SETTINGS.get(dataset, {}).get("methods", {})
    product = PRODUCT_METHOD.get(dataset)
    if product is None:
        return WorkspaceConfig(dataset=dataset, seed=seed)
    settings = dict(methods.get(product, {}))
    ltr = settings.pop("ltr", None)
    shared = SharedConfig.from_settings(
        {k: v for k, v in settings.items() if k in SHARED_SETTINGS})
    ranker = "ltr" if product.endswith("-ltr") else "twotower"
    return WorkspaceConfig(dataset=dataset, seed=seed, ranker=ranker, shared=shared, ltr=ltr)


#: The method the product ships per dataset: the headline of the benchmark report (compared
#: with the best baseline by NDCG@100) and the dashboard's default.
PRODUCT_METHOD: dict[str, str] = {
    # best validation NDCG@100 among the EmerFlow variants (tuning.json)
    # the learned ranker (engine.ltr) where it wins validation NDCG@100 (emerflow-ltr-tuning.json)
    "disgenet-curated": "emerflow-ltr",  # .5314 vs .5271 (emerflow-tt-nollm), .1283 (DeepFM)
    "movielens-1m-partial": "emerflow-ltr",  # .2649 vs .2446 (emerflow-tt-nollm), .0517
}


def product_method(dataset: str) -> str:
    """The shipped method of ``dataset`` (``emerflow-tt-nollm`` for datasets not listed)."""
    return PRODUCT_METHOD.get(dataset, "emerflow-tt-nollm")
