"""The layering of ``pipeline/``: lower layers never import upper ones, not even for types.

Every ``import`` in a module counts, wherever it stands (top level, inside a function, under
``TYPE_CHECKING``): a type-only import is still an edge that a refactoring must respect.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pipeline"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> Iterator[str]:
    """Every module ``path`` imports (``from a import b`` yields ``a`` and ``a.b``)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path.parent)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def modules_of(layer: str) -> list[Path]:
    """The files of ``pipeline.<layer>``, a package or a single module."""
    package, module = PACKAGE / layer, PACKAGE / f"{layer}.py"
    files = sorted(package.rglob("*.py")) if package.is_dir() else []
    return files + ([module] if module.is_file() else [])


def within(name: str, layer: str) -> bool:
    return name == f"pipeline.{layer}" or name.startswith(f"pipeline.{layer}.")


def violations(layer: str, forbidden: list[str], exempt: tuple[str, ...] = ()) -> list[str]:
    found = []
    for path in modules_of(layer):
        if path.relative_to(ROOT).as_posix() in exempt:
            continue
        for name in imported_modules(path):
            if any(within(name, upper) for upper in forbidden):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return sorted(set(found))


def test_the_walk_sees_imports_under_type_checking_and_inside_functions() -> None:
    # money.py imports TariffRule for its annotations only; part_tables() imports on use.
    assert "pipeline.domain.tariffs" in set(imported_modules(PACKAGE / "domain" / "money.py"))
    assert "pipeline.dispatch.tables" in set(imported_modules(PACKAGE / "db" / "tables.py"))
    assert modules_of("domain") and modules_of("logsafe")


def test_domain_imports_nothing_of_pipeline_outside_domain() -> None:
    layers = sorted(
        p.stem for p in PACKAGE.iterdir() if p.stem not in ("domain", "__init__", "__pycache__")
    )
    assert violations("domain", layers) == []


def test_db_imports_no_part_above_it() -> None:
    # db/tables.py names every part's table (part_tables()), so it imports their tables.
    found = violations(
        "db",
        ["eventlog", "projector", "dispatch", "ingest", "mismatches"],
        exempt=("pipeline/db/tables.py",),
    )
    assert found == []


def test_db_tables_imports_only_the_parts_table_modules() -> None:
    names = set(imported_modules(PACKAGE / "db" / "tables.py"))
    parts = ("projector", "dispatch", "ingest", "mismatches")
    upper = {n for n in names if any(within(n, p) for p in parts)}
    allowed = {f"pipeline.{p}" for p in parts} | {f"pipeline.{p}.tables" for p in parts}
    allowed |= {"pipeline.mismatches.table"}
    assert upper <= allowed, sorted(upper - allowed)


def test_logsafe_imports_nothing_from_dispatch() -> None:
    assert violations("logsafe", ["dispatch"]) == [], (
        "masking must live in pipeline.logsafe: the log filter may not depend on the dispatcher"
    )


def test_mismatches_imports_nothing_from_projector_or_dispatch() -> None:
    assert (PACKAGE / "mismatches").is_dir(), "pipeline/mismatches/ holds the mismatch modules"
    assert violations("mismatches", ["projector", "dispatch"]) == [], (
        "mismatches are a home of their own (pipeline/mismatches/): "
        "the projector and the dispatcher call it, never the other way round"
    )


def test_the_pure_dispatch_rules_take_their_types_from_the_model_not_the_sql_modules() -> None:
    sql = ["dispatch.claim", "dispatch.record", "dispatch.circuits", "dispatch.manage"]
    sql += ["dispatch.tables", "db"]
    found = [
        f"{path.name} imports {name}"
        for path in (PACKAGE / "dispatch" / f for f in ("model.py", "settle.py", "delivery.py"))
        for name in imported_modules(path)
        if any(within(name, layer) for layer in sql) or name.split(".")[0] == "sqlalchemy"
    ]
    assert found == []


def test_the_group_commit_helper_knows_neither_ingest_nor_dispatch() -> None:
    assert violations("groupcommit", ["ingest", "dispatch"]) == []
