"""The repository's functions, one module per concern (all re-exported by :mod:`db.repository`).

* :mod:`db.repo.workspaces`: workspaces.
* :mod:`db.repo.items`: items (creation, look-ups, duplicates, status).
* :mod:`db.repo.features`: item feature versions and per-domain suggested features.
* :mod:`db.repo.phases`: phase-0 embeddings, refinements, embeddings and snapshots.
* :mod:`db.repo.decisions`: analyst decisions and their history.
* :mod:`db.repo.llm_cache`: the LLM response cache.
* :mod:`db.repo.benchmarks`: stored benchmark runs.

Import them through :mod:`db.repository` (``from db import repository as repo``).
"""
