"""azure.yaml and the azd hook scripts."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.bicep import INFRA, REPO_ROOT
from tests.support.system import require_command

HOOKS = INFRA / "hooks"


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    loaded = yaml.safe_load((REPO_ROOT / "azure.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_one_python_function_service_from_the_repository_root(project: dict[str, Any]) -> None:
    assert project["name"] == "acr-retag"
    assert project["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    assert (REPO_ROOT / project["infra"]["path"] / f"{project['infra']['module']}.bicep").is_file()
    (service,) = project["services"].values()
    assert service == {"project": ".", "language": "python", "host": "function"}
    root = (REPO_ROOT / service["project"]).resolve()
    for name in ("function_app.py", "host.json", "requirements.txt", ".funcignore"):
        assert (root / name).is_file(), name


def test_the_function_app_tag_matches_the_service_name(project: dict[str, Any]) -> None:
    """azd deploy finds the app by its azd-service-name tag."""
    (service_name,) = project["services"]
    text = (INFRA / "app" / "function.bicep").read_text()
    assert f"'azd-service-name': '{service_name}'" in text


def test_funcignore_keeps_infrastructure_and_tests_out_of_the_package() -> None:
    ignored = {
        line.strip()
        for line in (REPO_ROOT / ".funcignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {"infra/", "tests/", "docs/", "azure.yaml", ".venv*"} <= ignored
    assert not ignored & {"retag/", "function_app.py", "host.json", "requirements.txt"}


def test_hooks_exist_for_both_shells(project: dict[str, Any]) -> None:
    assert set(project["hooks"]) == {"postdeploy", "predown"}
    for name, hook in project["hooks"].items():
        assert hook["posix"] == {
            "shell": "sh",
            "run": f"./infra/hooks/{name}.sh",
            "interactive": True,
            "continueOnError": False,
        }
        assert hook["windows"] == {
            "shell": "pwsh",
            "run": f"./infra/hooks/{name}.ps1",
            "interactive": True,
            "continueOnError": False,
        }
        for platform in ("posix", "windows"):
            assert (REPO_ROOT / hook[platform]["run"]).is_file()


@pytest.mark.parametrize("script", ["postdeploy.sh", "predown.sh"])
def test_shell_hooks_pass_bash_n_and_shellcheck(script: str) -> None:
    path = HOOKS / script
    assert path.read_text().startswith("#!/bin/sh\n")
    assert path.stat().st_mode & 0o111, f"{script} is not executable"
    subprocess.run(["bash", "-n", str(path)], check=True)
    shellcheck = require_command("shellcheck")
    done = subprocess.run(
        [shellcheck, "--shell=sh", "--severity=style", "--external-sources", str(path)],
        cwd=REPO_ROOT,  # the hooks' `# shellcheck source=infra/hooks/common.sh`
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout


def azd_variables(text: str) -> set[str]:
    return set(re.findall(r"\b(AZURE_[A-Z_]+)\b", text))


@pytest.mark.parametrize("hook", ["postdeploy", "predown"])
def test_powershell_hooks_mirror_the_shell_hooks(hook: str) -> None:
    """Same azd variables and the same az commands (each hook with its shared helpers)."""
    shell = (HOOKS / f"{hook}.sh").read_text() + (HOOKS / "common.sh").read_text()
    pwsh = (HOOKS / f"{hook}.ps1").read_text() + (HOOKS / "common.ps1").read_text()
    assert azd_variables(shell) == azd_variables(pwsh)
    for fragment in re.findall(r"az [a-z]+(?: [a-z-]+)+", shell):
        assert fragment in pwsh, fragment
    assert "$ErrorActionPreference = 'Stop'" in pwsh
    if shutil.which("pwsh") is None:
        return  # no PowerShell on Debian without Microsoft's repository: the checks above stand
    command = (
        "$errors = $null; [System.Management.Automation.Language.Parser]::ParseFile("
        f"'{HOOKS / (hook + '.ps1')}', [ref]$null, [ref]$errors) | Out-Null; "
        "if ($errors) { $errors | ForEach-Object { $_.ToString() }; exit 1 }"
    )
    subprocess.run(["pwsh", "-NoProfile", "-Command", command], check=True)


def test_hooks_use_the_outputs_phase_1_writes() -> None:
    outputs = set(re.findall(r"^output (AZURE_[A-Z_]+) ", (INFRA / "main.bicep").read_text(), re.M))
    provided_by_azd = {"AZURE_ENV_NAME", "AZURE_SUBSCRIPTION_ID"}
    for script in HOOKS.glob("*.sh"):
        used = azd_variables(script.read_text())
        assert used - provided_by_azd <= outputs, (script.name, used - outputs - provided_by_azd)


def test_postdeploy_deploys_phase_2_into_the_registry_group() -> None:
    text = (HOOKS / "postdeploy.sh").read_text()
    assert '--resource-group "$registry_group"' in text
    assert 'template="$script_dir/../subscription.bicep"' in text
    assert '--parameters "@$parameters"' in text
    assert '--function-name "$function_name"' in text  # waits for the function to exist
    assert Path(INFRA / "subscription.bicep").is_file()


def test_predown_never_deletes_the_registry_or_its_group() -> None:
    for script in ("predown.sh", "predown.ps1"):
        text = (HOOKS / script).read_text()
        assert "az group delete" not in text
        assert "az acr delete" not in text
        deletions = re.findall(r"az resource delete[^\n]*", text)
        assert deletions
        assert all("$registry" not in d.lower() for d in deletions), deletions
