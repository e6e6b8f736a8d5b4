"""Security lint of the product code (`retag/`, `function_app.py`): ruff's `S` rules (bandit)
apply, nothing switches them off quietly, and every suppression says why.

`make lint` runs ruff over everything; these tests pin what must stay true of its configuration
and of the suppressions in the code, so a finding cannot be silenced without a written reason.
"""

from __future__ import annotations

import fnmatch
import io
import re
import subprocess
import sys
import tokenize
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = sorted([*ROOT.glob("retag/**/*.py"), ROOT / "function_app.py"])

ACCEPTED_GLOBAL_IGNORES = {
    "S101": "assert: retag/ asserts only to narrow types for mypy on states that cannot occur "
    "(e.g. a credential checked by the caller); tests assert by design",
}
"""S rules ignored for the whole project, each with the reason it is accepted."""

_NOQA = re.compile(
    r"#\s*(?:ruff\s*:\s*)?noqa\b(?::\s*(?P<codes>[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*))?"
    r"(?P<rest>.*)$",
    re.IGNORECASE,
)
_NOSEC = re.compile(r"#\s*nosec\b(?P<codes>(?:\s+B[0-9]+(?:\s*,\s*B[0-9]+)*)?)(?P<rest>.*)$")


def _reason(rest: str) -> str:
    return rest.strip().lstrip("-:#\u2013\u2014").strip()


def suppression_problems(comment: str) -> list[str]:
    """What is wrong with one comment's lint suppressions (empty when nothing)."""
    problems = []
    noqa = _NOQA.search(comment)
    if noqa is not None:
        codes = [c.strip().upper() for c in (noqa["codes"] or "").split(",") if c.strip()]
        if re.match(r"#\s*ruff\s*:\s*noqa", comment, re.IGNORECASE) and not codes:
            problems.append("file-wide `# ruff: noqa` switches every rule off")
        elif not codes:
            problems.append("blanket `# noqa` (no rule codes) also silences the S rules")
        elif any(code.startswith("S") for code in codes) and len(_reason(noqa["rest"])) < 10:
            problems.append(f"`# noqa: {', '.join(codes)}` without a reason")
    nosec = _NOSEC.search(comment)
    if nosec is not None and len(_reason(nosec["rest"])) < 10:
        problems.append("`# nosec` without a reason")
    return problems


@pytest.mark.parametrize(
    ("comment", "ok"),
    [
        ("# noqa: S603 - the argv is a constant list, no shell", True),
        ("# noqa: S603  # argv is built from validated settings only", True),
        ("# noqa: B018 - raises when not started", True),
        ("# noqa: PLR0917", True),
        ("# noqa: S603", False),
        ("# noqa: E501, S105", False),
        ("# noqa: S105 - ok", False),
        ("# noqa", False),
        ("# NOQA", False),
        ("# ruff: noqa", False),
        ("# nosec", False),
        ("# nosec B603 - constant argv", True),
        ("# a comment that mentions noqa-free code", True),
    ],
)
def test_the_suppression_checker(comment: str, ok: bool) -> None:
    assert (suppression_problems(comment) == []) is ok, suppression_problems(comment)


def test_product_code_has_no_unexplained_suppressions() -> None:
    assert len(PRODUCT) > 5
    found = []
    for path in PRODUCT:
        source = path.read_text(encoding="utf-8")
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                for problem in suppression_problems(token.string):
                    found.append(f"{path.relative_to(ROOT)}:{token.start[0]}: {problem}")
    assert found == []


def _ruff_config() -> dict[str, object]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    lint: dict[str, object] = config["tool"]["ruff"]["lint"]
    return lint


def _codes(values: object) -> list[str]:
    assert isinstance(values, list)
    return [str(v) for v in values]


def test_ruff_security_rules_cover_the_product_code() -> None:
    lint = _ruff_config()
    assert "S" in _codes(lint["select"])
    ignored = [
        c for key in ("ignore", "extend-ignore") for c in _codes(lint.get(key, [])) if c[0] == "S"
    ]
    assert set(ignored) <= set(ACCEPTED_GLOBAL_IGNORES), (
        f"S rules ignored project-wide without an accepted reason: "
        f"{sorted(set(ignored) - set(ACCEPTED_GLOBAL_IGNORES))}"
    )
    per_file: dict[str, list[str]] = {}
    for key in ("per-file-ignores", "extend-per-file-ignores"):
        table = lint.get(key, {})
        assert isinstance(table, dict)
        for pattern, codes in table.items():
            per_file.setdefault(pattern, []).extend(_codes(codes))
    for path in PRODUCT:
        relative = path.relative_to(ROOT).as_posix()
        for pattern, codes in per_file.items():
            if fnmatch.fnmatch(relative, pattern):
                s_codes = [c for c in codes if c == "S" or c.startswith("S")]
                assert s_codes == [], f"{pattern} switches off {s_codes} for {relative}"


def test_ruff_security_rules_find_nothing_in_the_product_code() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--no-cache",
            "--select",
            "S",
            "--ignore",
            ",".join(ACCEPTED_GLOBAL_IGNORES),
            "--output-format",
            "concise",
            *(str(p.relative_to(ROOT)) for p in PRODUCT),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
