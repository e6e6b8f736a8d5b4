"""`retag.acr` is the edge: nothing else in retag/ imports it (or the Azure SDKs) at import time."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

RETAG = Path(__file__).resolve().parents[2] / "retag"
HEAVY = ("retag.acr", "azure.containerregistry", "azure.identity")


def module_level_imports(path: Path) -> list[str]:
    """Modules imported by statements that run at import time (not inside functions)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.append(node.module)
                found.extend(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If | ast.Try | ast.With):
                test = getattr(node, "test", None)
                if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
                    continue  # typing-only imports never run
                for block in ("body", "orelse", "finalbody", "handlers"):
                    inner = getattr(node, block, [])
                    visit([n for n in inner if isinstance(n, ast.stmt)])
                    for handler in inner:
                        if isinstance(handler, ast.ExceptHandler):
                            visit(handler.body)
            elif isinstance(node, ast.ClassDef):
                visit(node.body)

    visit(tree.body)
    return found


def test_no_retag_module_imports_the_edge_at_import_time() -> None:
    offenders = {}
    for path in sorted(RETAG.rglob("*.py")):
        if path.relative_to(RETAG).parts[0] == "acr":
            continue
        heavy = [m for m in module_level_imports(path) if m.startswith(HEAVY)]
        if heavy:
            offenders[str(path.relative_to(RETAG))] = heavy
    assert offenders == {}, (
        "import retag.acr.client lazily, inside the function that needs a registry"
    )


def test_importing_every_other_retag_module_loads_no_azure_sdk() -> None:
    modules = [
        ".".join(p.relative_to(RETAG).with_suffix("").parts)
        for p in sorted(RETAG.rglob("*.py"))
        if p.relative_to(RETAG).parts[0] != "acr" and p.stem != "__init__"
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module('retag.' + name)\n"
        f"loaded = sorted(m for m in sys.modules if m.startswith({HEAVY!r}))\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=RETAG.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == ""
