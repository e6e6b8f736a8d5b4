"""docs/cli.md's `--json` examples are what the commands print: every example is one object
with `ok`, `command` and `error`, there is one per command, and its keys (and the keys of the
first item of each list, and of each nested object) are exactly the keys the command prints,
run against the emulator."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from emulator import Emulator
from tests.cli.conftest import RunCli

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = REPO_ROOT / "docs" / "cli.md"
SAMPLE_EVENT = REPO_ROOT / "samples" / "events" / "image-pushed-latest.json"
COMMANDS = (
    "tag",
    "list",
    "replay",
    "push-sample",
    "doctor",
    "prune",
    "reconcile",
    "flux-manifests",
)
DYNAMIC = {"kept_by_reason"}
"""Objects whose keys are data (a reason per key), not part of the contract."""


def examples() -> list[dict[str, Any]]:
    blocks = re.findall(r"```json\n(.*?)\n```", DOC.read_text(), flags=re.S)
    return [json.loads(block) for block in blocks]


def example(command: str, *, ok: bool = True) -> dict[str, Any]:
    [found] = [e for e in examples() if e["command"] == command and e["ok"] is ok]
    return found


def assert_same_keys(documented: Any, printed: Any, where: str = "$") -> None:
    if isinstance(documented, dict):
        assert isinstance(printed, dict), where
        if where.rsplit(".", 1)[-1] in DYNAMIC:
            return
        assert list(documented) == list(printed), (where, list(documented), list(printed))
        for key, value in documented.items():
            assert_same_keys(value, printed[key], f"{where}.{key}")
    elif isinstance(documented, list):
        assert isinstance(printed, list), where
        if documented and printed:
            assert_same_keys(documented[0], printed[0], f"{where}[0]")


def test_every_command_has_one_example_and_every_example_has_the_envelope() -> None:
    found = examples()
    for value in found:
        assert isinstance(value["ok"], bool)
        assert "error" in value
        assert (value["error"] is None) is value["ok"]
    assert {e["command"] for e in found if e["ok"] or e["command"] == "replay"} == set(COMMANDS)
    for command in COMMANDS:
        assert f"## `{command}`" in DOC.read_text()


@pytest.fixture(scope="module")
def acr() -> Iterator[Emulator]:
    with Emulator(anonymous=True) as emulator:
        emulator.set_clock(datetime.now(UTC) - timedelta(days=30))
        yield emulator


def printed(cli: RunCli, env: dict[str, str], *argv: str) -> dict[str, Any]:
    value = json.loads(cli([*argv, "--json"], env=env).out)
    assert isinstance(value, dict)
    return value


def test_the_examples_have_the_keys_the_commands_print(
    cli: RunCli, env: dict[str, str], acr: Emulator
) -> None:
    assert_same_keys(example("push-sample"), printed(cli, env, "push-sample", "docs/app"))
    assert_same_keys(example("tag"), printed(cli, env, "tag", "docs/app"))
    assert_same_keys(example("list"), printed(cli, env, "list", "docs/app"))
    assert_same_keys(example("list", ok=False), printed(cli, env, "list", "docs/none"))
    assert_same_keys(example("doctor"), printed(cli, env, "doctor"))
    assert_same_keys(example("replay", ok=False), printed(cli, env, "replay", str(SAMPLE_EVENT)))
    acr.advance_clock(3600)
    cli(["push-sample", "docs/app"], env=env)  # `latest` moves on: its digest lacks a tag
    acr.set_clock(datetime.now(UTC))
    assert_same_keys(example("reconcile"), printed(cli, env, "reconcile", "--mode", "dry-run"))
    assert_same_keys(example("flux-manifests"), printed(cli, env, "flux-manifests", "docs/app"))


def test_the_prune_example_has_the_keys_prune_prints(cli: RunCli, env: dict[str, str]) -> None:
    cli(["push-sample", "docs/prune"], env=env)
    assert_same_keys(example("prune"), printed(cli, env, "prune", "--repository", "docs/prune"))
