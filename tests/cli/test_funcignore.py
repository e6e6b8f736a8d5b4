"""Issue 11, behaviour 8: the deployment package as azd builds it from `.funcignore`.

Evidence (read 2026-12): azd zip-deploys a function service's folder filtered by `.funcignore`,
"interpreted as standard .gitignore syntax", relative to the folder holding it; when the file is
present azd's default exclusions (`__pycache__`, `.venv`) are not applied, and for function apps
`local.settings.json` is always excluded (Azure/azure-dev issue #4381, implemented by pull
request #5383, merged 2025-06). `azure.yaml` deploys this repository's root (`project: .`).

The test walks a tree applying those rules (pathspec's gitignore implementation; a directory
that is ignored is not descended into, as in git) and asserts what is in and what is out.
"""

from __future__ import annotations

from pathlib import Path

import pathspec
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ALWAYS_EXCLUDED = {"local.settings.json"}


def package(root: Path) -> set[str]:
    """The relative paths (POSIX) of the files azd would put in the zip."""
    spec = pathspec.GitIgnoreSpec.from_lines((root / ".funcignore").read_text().splitlines())
    files: set[str] = set()

    def walk(folder: Path) -> None:
        for entry in sorted(folder.iterdir()):
            relative = entry.relative_to(root).as_posix()
            if entry.is_dir() and not entry.is_symlink():
                if not spec.match_file(relative + "/"):
                    walk(entry)
            elif not spec.match_file(relative) and relative not in ALWAYS_EXCLUDED:
                files.add(relative)

    walk(root)
    return files


INCLUDED = [
    "function_app.py",
    "host.json",
    "requirements.txt",
    "retag/__init__.py",
    "retag/cli/main.py",
    "retag/acr/client.py",
]
EXCLUDED = [
    ".env",
    ".env.local",
    "local.settings.json",
    "local.settings.json.example",
    "tests/cli/test_x.py",
    "emulator/app.py",
    ".venv/lib/python3.11/site-packages/x.py",
    ".venv-checkov/bin/checkov",
    "__pycache__/function_app.cpython-311.pyc",
    "retag/__pycache__/settings.cpython-311.pyc",
    "retag/cli/stale.pyc",
    ".mypy_cache/3.11/x.json",
    ".pytest_cache/v/cache/nodeids",
    ".ruff_cache/0.1/x",
    ".hypothesis/examples/x",
    ".cache/emulator/ca.pem",
    "build/lib/retag/settings.py",
    "dist/acr_retag-0.1.0.tar.gz",
    "acr_retag.egg-info/PKG-INFO",
    "benchmarks/bench_prune.py",
    "docs/cli.md",
    "infra/main.bicep",
    "samples/events/x.json",
    "Makefile",
    "azure.yaml",
    ".git/config",
    ".gitignore",
]


def test_a_tree_with_every_kind_of_leftover_packs_only_the_app(tmp_path: Path) -> None:
    (tmp_path / ".funcignore").write_text((REPO_ROOT / ".funcignore").read_text())
    for relative in [*INCLUDED, *EXCLUDED]:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    packed = package(tmp_path)
    assert set(INCLUDED) <= packed
    assert not packed & set(EXCLUDED), sorted(packed & set(EXCLUDED))


def test_this_checkout_packs_the_app_and_nothing_of_the_development_tree() -> None:
    packed = package(REPO_ROOT)
    for name in ("function_app.py", "host.json", "requirements.txt"):
        assert name in packed
    sources = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "retag").rglob("*.py")}
    sources = {s for s in sources if "__pycache__" not in s}
    assert sources <= packed
    top = {p.split("/", 1)[0] for p in packed}
    assert top <= {"function_app.py", "host.json", "requirements.txt", "retag", "README.md",
                   "pyproject.toml", ".funcignore"}, sorted(top)  # fmt: skip


@pytest.mark.parametrize("secret", [".env", "retag/.env", ".env.production"])
def test_env_files_never_ship(tmp_path: Path, secret: str) -> None:
    (tmp_path / ".funcignore").write_text((REPO_ROOT / ".funcignore").read_text())
    (tmp_path / secret).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / secret).write_text("AZURE_CLIENT_SECRET=x\n")
    assert secret not in package(tmp_path)
