"""The product path's import graph: the app's flows load none of the benchmark's modules, and
app/flows/ is the app's only importer of ``db.repository``."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

BENCH_ONLY = ("engine.bench", "engine.bench_cli", "engine.bench_report", "engine.baselines",
              "engine.paper", "bench")


def test_app_flows_import_no_benchmark_module():
    code = ("import sys, app.flows, app.state, engine.build, engine.workspace_store; "
            f"print([m for m in sys.modules if m.startswith({BENCH_ONLY})])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_every_product_ranker_kind_is_registered():
    from engine.config import RANKER_KINDS
    from engine.ranking.registry import RANKERS

    assert set(RANKERS) <= set(RANKER_KINDS)
    assert "twotower" in RANKERS


# ---- app/flows/ is the app's one way into the database -----------------------------------------
ROOT = Path(__file__).resolve().parents[1]
APP, FLOWS = ROOT / "app", ROOT / "app" / "flows"
#: db.database's functions that open or migrate a database (app.flows.open_database calls them).
DATABASE_OPENERS = ("make_engine", "make_read_only_engine", "write_engine", "init_db", "upgrade",
                    "create_database", "drop_database")


def _db_surface() -> tuple[set[str], dict[int, str]]:
    """(modules, functions) the app reaches only through app/flows/.

    Functions: every public function of ``db.repository`` whose first parameter is the
    database (an ``Engine`` or a unit-of-work ``Session``: reads, writes, ``unit_of_work``,
    ``read_session``), however it is reached (``db.repository``, the module defining it, or
    the ``db`` facade should it re-export one), and ``db.database``'s openers. Modules:
    ``db.repository``, every module defining one of those functions, and their packages
    below ``db``. Records, errors, limits and pure helpers (``normalize_name``) stay
    importable: they touch no database.
    """
    import db.database
    import db.repository as repo

    funcs: dict[int, str] = {}
    modules = {"db.repository"}
    for name in getattr(repo, "__all__", dir(repo)):
        obj = getattr(repo, name)
        if not inspect.isfunction(obj):
            continue
        first = next(iter(inspect.signature(obj).parameters), None)
        if first in ("db", "engine", "session"):
            funcs[id(obj)] = f"db.repository.{name}"
            modules.add(obj.__module__)
    for name in DATABASE_OPENERS:
        funcs[id(getattr(db.database, name))] = f"db.database.{name}"
    for mod in list(modules):
        parts = mod.split(".")
        modules.update(".".join(parts[:i]) for i in range(2, len(parts)))
    return modules, funcs


def _db_violations(source: str, modules: set[str], funcs: dict[int, str]) -> list[str]:
    """Where ``source`` reaches the database other than through app.flows (line: what)."""
    import importlib

    def forbidden_module(name: str) -> bool:
        return any(name == m or name.startswith(m + ".") for m in modules)

    out: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "db" or forbidden_module(alias.name):
                    out.append(f"{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and (
                node.module == "db" or node.module.startswith("db.")):
            if forbidden_module(node.module):
                out.append(f"{node.lineno}: from {node.module} import ...")
                continue
            mod = importlib.import_module(node.module)
            for alias in node.names:
                names = (getattr(mod, "__all__", dir(mod)) if alias.name == "*"
                         else [alias.name])
                for name in names:
                    obj = getattr(mod, name, None)
                    if inspect.ismodule(obj) and forbidden_module(obj.__name__):
                        out.append(f"{node.lineno}: from {node.module} import {name}")
                    elif id(obj) in funcs:
                        out.append(f"{node.lineno}: from {node.module} import {name} "
                                   f"({funcs[id(obj)]})")
        elif isinstance(node, ast.Attribute) and node.attr in ("repo", "repository"):
            out.append(f"{node.lineno}: .{node.attr} (the repository through another module)")
        elif isinstance(node, ast.Call) and _called(node) in ("import_module", "__import__") \
                and any(isinstance(a, ast.Constant) and isinstance(a.value, str)
                        and (a.value == "db" or forbidden_module(a.value)) for a in node.args):
            out.append(f"{node.lineno}: a dynamic import of the repository")
    return out


def _called(call: ast.Call) -> str:
    """The called function's own name (``import_module`` of ``importlib.import_module``)."""
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def test_only_app_flows_imports_the_repository():
    """Every app module outside app/flows/ reads and writes the database through app.flows."""
    modules, funcs = _db_surface()
    bad = {}
    for path in sorted(APP.rglob("*.py")):
        if FLOWS in path.parents:
            continue
        found = _db_violations(path.read_text(encoding="utf-8"), modules, funcs)
        if found:
            bad[str(path.relative_to(ROOT))] = found
    assert not bad, f"use app.flows instead of the repository: {bad}"
    # app/flows/ itself is where the repository is imported (the check sees those imports)
    assert _db_violations((FLOWS / "predict.py").read_text(encoding="utf-8"), modules, funcs)


@pytest.mark.parametrize("source", [
    "from db import repository as repo",
    "import db.repository",
    "import db",
    "from db.repository import ItemRecord",
    "from db.repository import *",
    "from db import *",
    "from db.transactions import unit_of_work",
    "from db.database import init_db",
    "x = flows.repo.get_item(db, 1)",
    "importlib.import_module('db.repository')",
    "__import__('db.repo.items')",
])
def test_the_repository_check_sees_every_form(source: str):
    modules, funcs = _db_surface()
    assert _db_violations(source, modules, funcs), source


@pytest.mark.parametrize("source", [
    "from db.errors import DBError, SchemaError",
    "from db.database import redacted",
    "from db.validators import normalize_name",
    "from app import flows\nflows.get_item(db, 1)",
    "st.session_state.get('db')",
])
def test_the_repository_check_allows_what_touches_no_database(source: str):
    modules, funcs = _db_surface()
    assert not _db_violations(source, modules, funcs), source
