"""Parser, help, settings sources and usage errors: everything that needs no registry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from retag.cli.args import split_reference
from retag.cli.env import export_azure_variables, merged_environment
from retag.cli.errors import CliError
from tests.cli.conftest import RunCli, assert_one_line_error

COMMANDS = ["tag", "list", "replay", "push-sample", "doctor", "flux-manifests"]
REPO_ROOT = Path(__file__).resolve().parents[2]


def test_python_m_retag_help_runs_without_importing_the_azure_sdks() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "retag", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: acr-retag")
    for command in [*COMMANDS, "prune", "reconcile"]:
        assert command in done.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    for heavy in ("azure.containerregistry", "azure.identity", "azure.core", "azure.functions"):
        assert heavy not in imported


@pytest.mark.parametrize("command", [*COMMANDS, "prune", "reconcile"])
def test_every_command_has_help_with_an_example(cli: RunCli, command: str) -> None:
    run = cli([command, "--help"])
    assert run.code == 0
    assert run.out.startswith(f"usage: acr-retag {command}")
    assert "examples:" in run.out
    assert f"acr-retag {command}" in run.out.split("examples:", 1)[1]
    assert "--registry" in run.out
    assert "--env-file" in run.out


@pytest.mark.parametrize("command", ["prune", "reconcile"])
def test_engine_commands_are_wired_with_the_settings_options(cli: RunCli, command: str) -> None:
    run = cli([command, "--help"])
    assert run.code == 0
    assert run.out.startswith(f"usage: acr-retag {command}")
    assert "example" in run.out
    assert "--registry" in run.out
    assert "--env-file" in run.out


def test_main_help_and_version(cli: RunCli) -> None:
    run = cli(["--help"])
    assert run.code == 0
    assert "exit codes: 0 ok, 1 operation failed, 2 usage or settings error" in run.out
    run = cli(["--version"])
    assert run.code == 0
    assert run.out.startswith("acr-retag ")


@pytest.mark.parametrize(
    "argv",
    [[], ["frobnicate"], ["tag"], ["list", "a", "b"], ["replay"], ["tag", "app", "--bogus"]],
)
def test_usage_errors_exit_2(cli: RunCli, argv: list[str]) -> None:
    run = cli(argv, env={"ACR_LOGIN_SERVER": "127.0.0.1:1"})
    assert run.code == 2
    assert "usage: acr-retag" in run.err
    assert "Traceback" not in run.err


def test_missing_registry_is_a_settings_error(cli: RunCli) -> None:
    run = cli(["list", "myapp"], env={})
    assert run.code == 2
    assert_one_line_error(run, "settings: ACR_LOGIN_SERVER")


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"ACR_LOGIN_SERVER": "https://myregistry.azurecr.io"}, "ACR_LOGIN_SERVER"),
        ({"ACR_LOGIN_SERVER": "r.example", "ACR_CREDENTIAL": "password"}, "ACR_CREDENTIAL"),
        ({"ACR_LOGIN_SERVER": "r.example", "RETAG_TAG_TEMPLATE": "{tag}"}, "RETAG_TAG_TEMPLATE"),
        ({"ACR_LOGIN_SERVER": "r.example", "PRUNE_KEEP": "many"}, "PRUNE_KEEP"),
        (
            {"ACR_LOGIN_SERVER": "r.example", "ACR_CA_BUNDLE": "/nonexistent/ca.pem"},
            "ACR_CA_BUNDLE",
        ),
    ],
)
@pytest.mark.parametrize("argv", [["list", "myapp"], ["tag", "myapp"], ["push-sample", "x"]])
def test_bad_settings_exit_2_with_one_line_naming_the_setting(
    cli: RunCli, env: dict[str, str], setting: str, argv: list[str]
) -> None:
    run = cli(argv, env=env)
    assert run.code == 2
    assert_one_line_error(run, f"settings: {setting}")


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["list", "MyApp"], "repository 'MyApp'"),
        (["tag", "../etc"], "repository '../etc'"),
        (["tag", "myapp", "--digest", "sha256:abc"], "digest 'sha256:abc'"),
        (["tag", "myapp", "--source-tag=-bad"], "tag '-bad'"),
        (["tag", "myapp", "--template", "{tag}"], "--template:"),
        (["tag", "myapp", "--template", "{tag}_{timestamp}_{nope}"], "--template:"),
        (["push-sample", "app@sha256:" + "a" * 64], "not a digest"),
        (["push-sample", "app:-x"], "tag '-x'"),
        (["doctor", "--repository", "Bad"], "repository 'Bad'"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(cli: RunCli, argv: list[str], fragment: str) -> None:
    run = cli(argv, env={"ACR_LOGIN_SERVER": "127.0.0.1:1", "ACR_CREDENTIAL": "anonymous"})
    assert run.code == 2
    assert_one_line_error(run, fragment)


def test_split_reference() -> None:
    assert split_reference("app") == ("app", "latest")
    assert split_reference("team/app:v1") == ("team/app", "v1")
    assert split_reference("team/app") == ("team/app", "latest")
    with pytest.raises(CliError):
        split_reference("Team/app")


# -- settings sources ------------------------------------------------------------------------


def test_env_file_values_are_used_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / "settings.env"
    env_file.write_text(
        "# acr-retag\nACR_LOGIN_SERVER=from-file.example\nACR_CREDENTIAL=anonymous\n"
        "RETAG_SOURCE_TAGS='latest,stable'\n"
    )
    merged = merged_environment({"ACR_LOGIN_SERVER": "from-env.example"}, str(env_file), None)
    assert merged["ACR_LOGIN_SERVER"] == "from-env.example"
    assert merged["ACR_CREDENTIAL"] == "anonymous"
    assert merged["RETAG_SOURCE_TAGS"] == "latest,stable"
    merged = merged_environment({"ACR_LOGIN_SERVER": "x"}, str(env_file), "from-flag.example")
    assert merged["ACR_LOGIN_SERVER"] == "from-flag.example"


def test_dot_env_in_the_current_directory_is_read_by_default(isolated_cwd: Path) -> None:
    (isolated_cwd / ".env").write_text("ACR_LOGIN_SERVER=cwd.example\n")
    assert merged_environment({}, None, None)["ACR_LOGIN_SERVER"] == "cwd.example"
    assert merged_environment({}, None, "flag.example")["ACR_LOGIN_SERVER"] == "flag.example"


def test_no_dot_env_is_fine(isolated_cwd: Path) -> None:
    assert merged_environment({"A": "1"}, None, None) == {"A": "1"}


def test_missing_env_file_is_a_usage_error(cli: RunCli, tmp_path: Path) -> None:
    run = cli(["--env-file", str(tmp_path / "missing.env"), "list", "myapp"])
    assert run.code == 2
    assert_one_line_error(run, "cannot read env file", "missing.env")


def test_malformed_env_file_is_a_usage_error_without_the_value(cli: RunCli, tmp_path: Path) -> None:
    env_file = tmp_path / "bad.env"
    env_file.write_text("ACR_LOGIN_SERVER=r.example\nAZURE_CLIENT_SECRET hunter2\n")
    run = cli(["list", "myapp", "--env-file", str(env_file)])
    assert run.code == 2
    line = assert_one_line_error(run, "bad.env:2", "expected KEY=VALUE")
    assert "hunter2" not in line


def test_settings_errors_from_the_env_file_name_the_setting(cli: RunCli, tmp_path: Path) -> None:
    env_file = tmp_path / "settings.env"
    env_file.write_text("ACR_LOGIN_SERVER=r.example\nPRUNE_MODE=sometimes\n")
    run = cli(["--env-file", str(env_file), "list", "myapp"])
    assert run.code == 2
    assert_one_line_error(run, "settings: PRUNE_MODE")


def test_azure_variables_from_the_env_file_reach_the_sdk_unless_already_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AZURE_CLIENT_ID", "placeholder")  # recorded, so the test restores it
    monkeypatch.delenv("AZURE_CLIENT_ID")
    monkeypatch.setenv("AZURE_TENANT_ID", "from-environment")
    monkeypatch.setenv("RETAG_SOURCE_TAGS", "placeholder")
    monkeypatch.delenv("RETAG_SOURCE_TAGS")
    export_azure_variables(
        {
            "AZURE_CLIENT_ID": "from-file",
            "AZURE_TENANT_ID": "from-file",
            "RETAG_SOURCE_TAGS": "from-file",
        }
    )
    assert os.environ["AZURE_CLIENT_ID"] == "from-file"
    assert os.environ["AZURE_TENANT_ID"] == "from-environment"
    assert "RETAG_SOURCE_TAGS" not in os.environ  # only AZURE_* are exported
