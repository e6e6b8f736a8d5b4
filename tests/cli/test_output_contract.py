"""Issue 11, behaviours 1, 4, 7 and 9 on the CLI side, against the emulator (real SDK, HTTPS):

- every command's `--json` is ONE object with `ok`, `command` and its data; on an error the
  object is still printed (`ok: false`, `error`) and stderr gets one `acr-retag: error:` line;
- a run that could not do its job (the registry unreachable while pruning) is loud: `ok: false`,
  the error line naming the cause, exit 1 (it used to print an empty table and no error line);
- `--repository` is a full-match regex; a filter that matches nothing prints a warning;
- `.env`: relative paths are resolved against the file's folder; a missing required setting
  names the `.env` that was looked for;
- the SDK loggers are set from RETAG_SDK_LOG_LEVEL once the settings are loaded.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator import Emulator
from retag.logline import SDK_LOGGERS
from tests.cli.conftest import Run, RunCli, assert_one_line_error

SAMPLE_EVENT = (
    Path(__file__).resolve().parents[2] / "samples" / "events" / "image-pushed-latest.json"
)


@pytest.fixture
def unreachable(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """Settings naming a port that is bound but never listens: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield {**env, "ACR_LOGIN_SERVER": f"127.0.0.1:{sock.getsockname()[1]}"}


def document(run: Run, command: str) -> dict[str, Any]:
    """stdout is exactly one JSON object carrying the envelope keys."""
    value = json.loads(run.out)
    assert isinstance(value, dict), run.out
    assert isinstance(value["ok"], bool)
    assert value["command"] == command
    assert "error" in value
    return value


def failed_document(run: Run, command: str, *fragments: str) -> dict[str, Any]:
    value = document(run, command)
    assert value["ok"] is False
    line = assert_one_line_error(run, *fragments)
    assert value["error"] in line  # the same cause on both channels
    return value


# -- success: the envelope around every command's data ---------------------------------------


def test_every_command_prints_one_object_with_ok_and_command(
    cli: RunCli, env: dict[str, str], acr: Emulator
) -> None:
    pushed = document(cli(["push-sample", "contract/app", "--json"], env=env), "push-sample")
    assert pushed["ok"] is True
    assert pushed["digest"].startswith("sha256:")
    tagged = document(cli(["tag", "contract/app", "--json"], env=env), "tag")
    assert tagged["ok"] is True
    assert tagged["timestamp"].endswith("Z")
    listed = document(cli(["list", "contract/app", "--json"], env=env), "list")
    assert {row["tag"] for row in listed["tags"]} == {"latest", tagged["tag"]}
    assert (listed["source_tags"], listed["generated_tags"], listed["other_tags"]) == (1, 1, 0)
    assert all(row["last_updated"].endswith("Z") for row in listed["tags"])
    doctor = document(cli(["doctor", "--json"], env=env), "doctor")
    assert doctor["ok"] is True
    assert set(doctor["counts"]) == {"ok", "fail", "skip", "info"}
    assert doctor["counts"]["fail"] == 0
    prune = document(cli(["prune", "--repository", "contract/.*", "--json"], env=env), "prune")
    assert prune["ok"] is True
    reconcile = document(cli(["reconcile", "--mode", "dry-run", "--json"], env=env), "reconcile")
    assert reconcile["ok"] is True
    assert reconcile["interrupted"] is False
    manifests = document(
        cli(["flux-manifests", "contract/app", "--json"], env=env), "flux-manifests"
    )
    assert manifests["ok"] is True
    assert [m["kind"] for m in manifests["manifests"]] == ["ImageRepository", "ImagePolicy"]


def test_replay_counts_are_all_present_and_a_rejection_is_not_ok(
    cli: RunCli, env: dict[str, str]
) -> None:
    """The unmodified sample names another registry: rejected (exit 1, `ok: false`)."""
    run = cli(["replay", str(SAMPLE_EVENT), "--json"], env=env)
    assert run.code == 1
    value = document(run, "replay")
    assert value["ok"] is False
    assert value["counts"] == {
        "retagged": 0,
        "ignored": 0,
        "rejected": 1,
        "failed": 0,
        "unreadable": 0,
    }
    assert value["events"][0]["status"] == "rejected"


# -- failures: the object still printed, one error line ----------------------------------------


@pytest.mark.parametrize(
    ("argv", "command", "fragment"),
    [
        (["list", "contract/none", "--json"], "list", "not found"),
        (["tag", "contract/none", "--json"], "tag", "not found"),
    ],
)
def test_a_failing_command_still_prints_the_object(
    cli: RunCli, env: dict[str, str], argv: list[str], command: str, fragment: str
) -> None:
    run = cli(argv, env=env)
    assert run.code == 1
    failed_document(run, command, fragment)


def test_settings_and_usage_errors_with_json_print_the_object_and_exit_2(cli: RunCli) -> None:
    run = cli(["list", "myapp", "--json"], env={})
    assert run.code == 2
    failed_document(run, "list", "settings: ACR_LOGIN_SERVER")
    run = cli(["tag", "Bad", "--json"], env={"ACR_LOGIN_SERVER": "127.0.0.1:1"})
    assert run.code == 2
    failed_document(run, "tag", "repository 'Bad'")
    run = cli(
        ["flux-manifests", "app", "--name", "Bad", "--json"], env={"ACR_LOGIN_SERVER": "x.io"}
    )
    assert run.code == 2
    failed_document(run, "flux-manifests", "name 'Bad' is not a Kubernetes name")


def test_push_sample_to_an_unreachable_registry(cli: RunCli, unreachable: dict[str, str]) -> None:
    run = cli(["push-sample", "contract/x", "--json"], env=unreachable)
    assert run.code == 1
    failed_document(run, "push-sample", "unreachable or failing")


def test_doctor_failure_is_not_ok_with_one_error_line(
    cli: RunCli, unreachable: dict[str, str]
) -> None:
    run = cli(["doctor", "--json"], env=unreachable)
    assert run.code == 1
    value = failed_document(run, "doctor", "doctor: 1 check(s) failed: reachable")
    assert value["counts"]["fail"] == 1


def test_prune_with_the_registry_unreachable_is_loud(
    cli: RunCli, unreachable: dict[str, str]
) -> None:
    """Issue 11's bug: this printed an empty table and exit 1 with no error line, and its JSON
    said `"complete": true` next to the catalog error."""
    run = cli(["prune"], env=unreachable)
    assert run.code == 1
    assert_one_line_error(run, "acr-retag: error: prune: listing repositories failed")
    run = cli(["prune", "--mode", "delete", "--json"], env=unreachable)
    assert run.code == 1
    value = failed_document(run, "prune", "listing repositories failed")
    assert value["error"].startswith("listing repositories failed")
    assert value["repositories"] == []


def test_reconcile_with_the_registry_unreachable_is_loud(
    cli: RunCli, unreachable: dict[str, str]
) -> None:
    run = cli(["reconcile", "--max-duration", "1s", "--json"], env=unreachable)
    assert run.code == 1
    failed_document(run, "reconcile", "listing repositories failed")


# -- filters -----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["prune", "reconcile"])
def test_repository_is_a_full_match_and_an_empty_match_warns(
    cli: RunCli, env: dict[str, str], command: str
) -> None:
    cli(["push-sample", "contract/full"], env=env)
    run = cli([command, "--mode", "dry-run", "--repository", "contract/ful"], env=env)
    assert run.code == 0, run.err
    assert run.err.splitlines() == [
        "acr-retag: warning: --repository 'contract/ful' matched no repository"
    ]
    run = cli([command, "--mode", "dry-run", "--repository", "contract/f.*", "--json"], env=env)
    assert run.code == 0, run.err
    assert run.err == ""
    assert "contract/full" in [r["repository"] for r in document(run, command)["repositories"]]


@pytest.mark.parametrize("command", ["prune", "reconcile"])
def test_engine_help_examples_say_acr_retag(cli: RunCli, command: str) -> None:
    run = cli([command, "--help"])
    examples = run.out.split("examples:", 1)[1]
    assert f"acr-retag {command}" in examples
    assert "python -m retag" not in run.out
    assert "--mode" in run.out
    assert "130 interrupted" in run.out


# -- .env ----------------------------------------------------------------------------------------


def test_relative_paths_in_env_are_relative_to_the_file(
    cli: RunCli, env: dict[str, str], acr: Emulator, tmp_path: Path, isolated_cwd: Path
) -> None:
    folder = tmp_path / "project"
    (folder / ".cache" / "emulator").mkdir(parents=True)
    shutil.copy(acr.ca_bundle, folder / ".cache" / "emulator" / "ca.pem")
    (folder / ".env").write_text(
        f"ACR_LOGIN_SERVER={acr.login_server}\nACR_CREDENTIAL=anonymous\n"
        "ACR_CA_BUNDLE=.cache/emulator/ca.pem\n"
    )
    cli(["push-sample", "contract/dotenv"], env=env)
    # Run from another folder: the CA path resolves against the .env's folder, not the cwd.
    run = cli(["--env-file", str(folder / ".env"), "list", "contract/dotenv"])
    assert run.code == 0, run.err
    assert "latest" in run.out


def test_a_missing_required_setting_names_the_env_file_looked_for(
    cli: RunCli, isolated_cwd: Path
) -> None:
    run = cli(["list", "myapp"], env={})
    assert run.code == 2
    assert_one_line_error(
        run, "settings: ACR_LOGIN_SERVER", f"no .env file at {isolated_cwd.resolve() / '.env'}"
    )


# -- SDK logging -------------------------------------------------------------------------------


@pytest.fixture
def sdk_levels() -> Iterator[None]:
    saved = {name: logging.getLogger(name).level for name in SDK_LOGGERS}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("sdk_levels")
@pytest.mark.parametrize(("setting", "level"), [(None, logging.WARNING), ("debug", logging.DEBUG)])
def test_the_cli_quiets_the_sdk_loggers_once_settings_are_loaded(
    cli: RunCli, env: dict[str, str], setting: str | None, level: int
) -> None:
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    extra = {"RETAG_SDK_LOG_LEVEL": setting} if setting else {}
    cli(["list", "contract/none"], env={**env, **extra})
    assert {logging.getLogger(name).level for name in SDK_LOGGERS} == {level}


def test_prune_whose_time_box_ends_with_work_left_is_not_ok(
    cli: RunCli, env: dict[str, str]
) -> None:
    """`complete: false` used to exit 0: the run did not do what it was asked."""
    cli(["push-sample", "contract/boxed"], env=env)
    run = cli(
        ["prune", "--repository", "contract/boxed", "--max-duration", "0s", "--json"], env=env
    )
    assert run.code == 1
    value = failed_document(run, "prune", "prune: time box reached")
    assert value["unvisited_repositories"] == ["contract/boxed"]


def test_a_dry_run_that_only_plans_is_ok(cli: RunCli, env: dict[str, str]) -> None:
    cli(["push-sample", "contract/plan"], env=env)
    run = cli(["prune", "--repository", "contract/plan", "--keep", "0", "--json"], env=env)
    assert run.code == 0, run.err
    assert run.err == ""
    assert document(run, "prune")["ok"] is True


def test_a_usage_error_with_json_still_prints_the_object(cli: RunCli) -> None:
    run = cli(["tag", "--json"], env={})
    assert run.code == 2
    value = document(run, "tag")
    assert value["ok"] is False
    assert "REPOSITORY" in value["error"]
    assert "usage: acr-retag tag" in run.err  # argparse's usage text, as without --json


def test_a_missing_required_setting_names_the_env_file_it_read(cli: RunCli, tmp_path: Path) -> None:
    env_file = tmp_path / "ci.env"
    env_file.write_text("ACR_CREDENTIAL=anonymous\n")
    run = cli(["--env-file", str(env_file), "list", "myapp"], env={})
    assert run.code == 2
    assert_one_line_error(run, "settings: ACR_LOGIN_SERVER", f"nor in {env_file.resolve()}")
