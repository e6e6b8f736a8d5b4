"""Parse Bicep with pycep-parser and query the parsed model (no `bicep` binary exists here).

pycep builds a LALR parser from its grammar on first use (~15 s). Lark can cache the built parser
in a file; `BicepParser` only offers `cache=True`, which writes to the system temp directory, so
`CachedBicepParser` passes Lark's documented `cache=<path>` option to keep the cache in the work
tree (`.cache/`, gitignored). Lark checks the grammar hash stored in the file and rebuilds it when
pycep's grammar changes.

Known pycep 0.7 quirks the templates avoid (and tests/infra enforce): it parses `!a && b` as
`!(a && b)` and `a == b ? x : y` as `a == (b ? x : y)`, so conditions are parenthesised; it does
not support multi-line ternaries or multi-line function arguments (checkov's older pycep neither).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

from lark import Lark
from pycep import BicepParser
from pycep.main import LARK_GRAMMAR

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA = REPO_ROOT / "infra"
CACHE_DIR = REPO_ROOT / ".cache"


class CachedBicepParser(BicepParser):
    """`pycep.BicepParser` whose Lark parser cache lives in `cache_file` instead of /tmp."""

    def __init__(self, cache_file: Path) -> None:
        # Same construction as BicepParser.__init__, with a cache path instead of cache=True.
        self.add_line_numbers = False
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        self.lark_parser = Lark(
            grammar=LARK_GRAMMAR,
            parser="lalr",
            propagate_positions=True,
            regex=True,
            cache=str(cache_file),
        )


def make_parser() -> CachedBicepParser:
    return CachedBicepParser(CACHE_DIR / f"pycep-{version('pycep-parser')}.lark")


def parse_all(parser: BicepParser) -> dict[str, dict[str, Any]]:
    """Every .bicep file under infra/, keyed by its path relative to infra/ (app/function.bicep)."""
    return {
        path.relative_to(INFRA).as_posix(): parser.parse(file_path=path)
        for path in sorted(INFRA.rglob("*.bicep"))
    }


# --- queries on the parsed model -------------------------------------------------------------


def config(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The body of a resource or module, unwrapping `= if (...) { ... }`."""
    body = entry["config"]
    if "condition" in body and "config" in body:
        return dict(body["config"])
    return dict(body)


def condition(entry: Mapping[str, Any]) -> Any:
    """The `if (...)` condition of a resource or module, or None."""
    body = entry["config"]
    return body["condition"] if "condition" in body and "config" in body else None


def resources_of_type(model: Mapping[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {
        name: entry
        for name, entry in model.get("resources", {}).items()
        if entry["type"] == type_ and not entry["existing"]
    }


def one_resource(model: Mapping[str, Any], type_: str) -> dict[str, Any]:
    found = resources_of_type(model, type_)
    assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
    return next(iter(found.values()))


def variable(model: Mapping[str, Any], name: str) -> Any:
    return model["variables"][name]["value"]


def param_default(model: Mapping[str, Any], name: str) -> Any:
    return model["parameters"][name].get("default")


def decorator(model: Mapping[str, Any], param: str, kind: str) -> Any:
    for item in model["parameters"][param]["decorators"]:
        if item["type"] == kind:
            return item["argument"]
    return None


def accessor(expr: Any) -> str | None:
    """`a.b.c` as "a.b.c" when expr is a property access chain of plain names, else None."""
    if isinstance(expr, str):
        return expr
    if isinstance(expr, dict) and expr.get("operator", {}).get("type") == "property_accessor":
        operands = expr["operator"]["operands"]
        left, right = accessor(operands["operand_1"]), accessor(operands["operand_2"])
        if left is not None and right is not None:
            return f"{left}.{right}"
    return None


def walk(node: Any) -> Iterator[Any]:
    """Every node of a parsed value (dicts, lists, scalars), depth first."""
    yield node
    if isinstance(node, Mapping):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def keyed(node: Any, key: str) -> Iterator[Any]:
    """Every value stored under `key` anywhere in node."""
    for item in walk(node):
        if isinstance(item, Mapping) and key in item:
            yield item[key]


def strings(node: Any) -> Iterator[str]:
    for item in walk(node):
        if isinstance(item, str):
            yield item


def pretty(node: Any) -> str:
    return json.dumps(node, indent=1, sort_keys=True)
