"""Lower layers do not import upper ones: the mismatch package, log masking, the dispatcher's
pure rules. Read from the source, so an import hidden inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pipeline

ROOT = Path(pipeline.__file__).parent


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _offending(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{path.relative_to(ROOT)} imports {module}"
        for path in paths
        for module in _imports(path)
        if module.startswith(forbidden)
    )


def test_the_mismatch_package_imports_neither_projector_nor_dispatcher() -> None:
    paths = sorted((ROOT / "mismatches").glob("*.py"))
    assert paths, "pipeline/mismatches/ holds the mismatch modules"
    assert _offending(paths, ("pipeline.projector", "pipeline.dispatch")) == []


def test_log_masking_imports_nothing_from_the_dispatcher() -> None:
    assert _offending([ROOT / "logsafe.py"], ("pipeline.dispatch",)) == []


def test_the_pure_dispatch_rules_take_their_types_from_the_model_not_the_sql_modules() -> None:
    sql_modules = (
        "pipeline.dispatch.claim",
        "pipeline.dispatch.record",
        "pipeline.dispatch.circuits",
        "pipeline.dispatch.manage",
        "pipeline.dispatch.tables",
        "pipeline.db",
        "sqlalchemy",
    )
    paths = [ROOT / "dispatch" / name for name in ("model.py", "settle.py", "delivery.py")]
    assert _offending(paths, sql_modules) == []


def test_the_group_commit_helper_knows_neither_ingest_nor_dispatch() -> None:
    assert _offending([ROOT / "groupcommit.py"], ("pipeline.ingest", "pipeline.dispatch")) == []
