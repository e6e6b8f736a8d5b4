"""The azd hooks run for real (POSIX sh) against a fake `az` (tests/infra/fake/az) on PATH.

The fake answers from a JSON state and records every call, so each test checks what a hook
asked Azure to do and what it left alone. PowerShell is not installed here: the .ps1 twins are
checked by matching their source against the same algorithm and vectors (see the last tests),
not by running them.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infra.test_bicep import hook_parameters
from tests.support.bicep import INFRA, config, decorator, variable

HOOKS = INFRA / "hooks"
FAKE = Path(__file__).parent / "fake"
APP_SUB = "00000000-0000-0000-0000-00000000aaaa"
REG_SUB = "00000000-0000-0000-0000-00000000bbbb"
ENV64 = "team-platform-retag-production-westeurope-shared-registry-00001"
assert len(ENV64) == 63
ENV64 += "x"
REGISTRY_ID = (
    f"/subscriptions/{REG_SUB}/resourceGroups/rg-registry"
    "/providers/Microsoft.ContainerRegistry/registries/myregistry"
)
IDENTITY_ID = (
    f"/subscriptions/{APP_SUB}/resourceGroups/rg-app"
    "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-retag"
)


def expected_name(prefix: str, env: str) -> str:
    """The documented rule: prefix+env, or its first 55 characters + '-' + sha256(env)[:8]."""
    full = prefix + env
    if len(full) <= 64:
        return full
    return full[:55] + "-" + hashlib.sha256(env.encode()).hexdigest()[:8]


def topic(name: str, group: str, owner: str | None, identity: str | None, **extra: Any) -> dict:
    return {
        "id": f"/subscriptions/{REG_SUB}/resourceGroups/{group}"
        f"/providers/Microsoft.EventGrid/systemTopics/{name}",
        "name": name,
        "group": group,
        "subscription": REG_SUB,
        "source": REGISTRY_ID.upper(),  # ARM ids compare case-insensitively
        "tags": {"acr-retag-env": owner} if owner else {},
        "identity": identity,
        **extra,
    }


class Hooks:
    def __init__(self, tmp: Path, env_name: str) -> None:
        self.tmp = tmp
        self.state_path = tmp / "state.json"
        self.log_path = tmp / "az.log"
        self.env_name = env_name
        self.state: dict[str, Any] = {"subscriptions": [APP_SUB, REG_SUB], "topics": []}

    def environment(self, **extra: str) -> dict[str, str]:
        values = {
            "AZURE_ENV_NAME": self.env_name,
            "AZURE_SUBSCRIPTION_ID": APP_SUB,
            "AZURE_RESOURCE_GROUP": "rg-app",
            "AZURE_RESOURCE_GROUP_CREATED": "true",
            "AZURE_FUNCTION_APP_NAME": "func-retag-x",
            "AZURE_FUNCTION_NAME": "on_image_pushed",
            "AZURE_REGISTRY_SUBSCRIPTION_ID": REG_SUB,
            "AZURE_REGISTRY_RESOURCE_GROUP": "rg-registry",
            "AZURE_REGISTRY_NAME": "myregistry",
            "AZURE_WIRING_PARAMETERS": '{"environmentName": {"value": "x"}}',
            "AZURE_EVENTGRID_SUBSCRIPTION": "retag-on-image-pushed-abc",
            "AZURE_APP_IDENTITY_PRINCIPAL_ID": "principal-1",
            "AZURE_APP_IDENTITY_ID": IDENTITY_ID,
            "RETAG_HOOK_WAIT_SECONDS": "0",
        }
        values.update(extra)
        return {
            "PATH": f"{FAKE}:/usr/bin:/bin",
            "HOME": str(self.tmp),
            "FAKE_AZ_STATE": str(self.state_path),
            "FAKE_AZ_LOG": str(self.log_path),
            **values,
        }

    def run(self, hook: str, **extra: str) -> subprocess.CompletedProcess[str]:
        self.state_path.write_text(json.dumps(self.state))
        self.log_path.write_text("")
        done = subprocess.run(
            ["sh", str(HOOKS / f"{hook}.sh")],
            env=self.environment(**extra),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        self.state = json.loads(self.state_path.read_text())
        return done

    def calls(self, *words: str) -> list[list[str]]:
        lines = [json.loads(line) for line in self.log_path.read_text().splitlines()]
        return [c for c in lines if c[: len(words)] == list(words)]

    def option(self, call: list[str], name: str) -> str:
        return call[call.index(name) + 1]


@pytest.fixture
def hooks(tmp_path: Path) -> Hooks:
    assert shutil.which("sha256sum") or shutil.which("shasum")
    return Hooks(tmp_path, "prod")


def deploy_parameters(call: list[str]) -> dict[str, str]:
    start = call.index("@" + call[call.index("--parameters") + 1].lstrip("@"))
    pairs = [word for word in call[start + 1 :] if "=" in word and not word.startswith("-")]
    return dict(pair.split("=", 1) for pair in pairs)


# --- deployment names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "env"),
    [
        ("acr-retag-wiring-", "prod"),
        ("acr-retag-wiring-", "e" * 47),  # exactly 64
        ("acr-retag-wiring-", "e" * 48),  # 65: cut + hash
        ("retag-registry-roles-", ENV64),
        ("retag-events-", ENV64),
    ],
)
def test_sh_deployment_name_follows_the_rule(prefix: str, env: str) -> None:
    done = subprocess.run(
        ["sh", "-c", f'. "{HOOKS / "common.sh"}"; deployment_name "$1" "$2"', "sh", prefix, env],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == expected_name(prefix, env)
    assert len(done.stdout) <= 64


def test_a_64_character_environment_gets_64_character_names_through_postdeploy(
    tmp_path: Path,
) -> None:
    hooks = Hooks(tmp_path, ENV64)
    done = hooks.run("postdeploy")
    assert done.returncode == 0, done.stderr
    (deploy,) = hooks.calls("deployment", "group", "create")
    name = hooks.option(deploy, "--name")
    assert name == expected_name("acr-retag-wiring-", ENV64)
    assert len(name) == 64
    assert (
        deploy_parameters(deploy)["environmentHash"]
        == (hashlib.sha256(ENV64.encode()).hexdigest()[:8])
    )


def test_predown_looks_up_the_same_names_for_a_64_character_environment(tmp_path: Path) -> None:
    hooks = Hooks(tmp_path, ENV64)
    names = {
        expected_name(p, ENV64): ENV64
        for p in ("acr-retag-wiring-", "retag-registry-roles-", "retag-events-")
    }
    names[expected_name("retag-events-", "other")] = "other"
    hooks.state["deployments"] = dict(names)
    done = hooks.run("predown")
    assert done.returncode == 0, done.stderr
    asked = [hooks.option(c, "--name") for c in hooks.calls("deployment", "group", "show")]
    assert all(len(name) <= 64 for name in asked)
    assert set(hooks.state["deployments"]) == {expected_name("retag-events-", "other")}


def test_bicep_names_nested_deployments_with_the_same_rule(bicep: dict[str, Any]) -> None:
    """subscription.bicep cannot hash, so it takes environmentHash from the hook."""
    model = bicep["subscription.bicep"]
    for var, full in (
        ("rolesName", "rolesFull"),
        ("eventsName", "eventsFull"),
        ("alertsName", "alertsFull"),
        ("topicRoleName", "topicRoleFull"),
        ("vaultRoleName", "vaultRoleFull"),
    ):
        operands = variable(model, var)["operator"]["operands"]
        assert operands["condition"]["operator"]["type"] == "less_than_or_equals"
        assert operands["condition"]["operator"]["operands"]["operand_2"] == 64
        assert operands["true_value"] == full
        assert operands["false_value"] == f"${{take({full}, 55)}}-${{environmentHash}}"
    assert decorator(model, "environmentHash", "min_length") == 8
    assert decorator(model, "environmentHash", "max_length") == 8
    names = {config(m)["name"] for m in model["modules"].values()}
    assert names == {"rolesName", "eventsName", "alertsName", "topicRoleName", "vaultRoleName"}


# --- postdeploy: the registry's system topic -----------------------------------------------------


def test_postdeploy_creates_a_topic_when_the_registry_has_none(hooks: Hooks) -> None:
    done = hooks.run("postdeploy")
    assert done.returncode == 0, done.stderr
    (deploy,) = hooks.calls("deployment", "group", "create")
    params = deploy_parameters(deploy)
    assert params["createSystemTopic"] == "true"
    assert params["systemTopicName"] == "myregistry-events"
    assert params["systemTopicResourceGroup"] == "rg-registry"
    assert hooks.option(deploy, "--subscription") == REG_SUB  # the registry's subscription
    assert hooks.option(deploy, "--resource-group") == "rg-registry"
    (wait,) = hooks.calls("functionapp", "function", "show")
    assert hooks.option(wait, "--subscription") == APP_SUB  # the app's subscription


@pytest.mark.parametrize(
    ("identity", "dead_letter"),
    [("SystemAssigned", "SystemAssigned"), ("UserAssigned", "UserAssigned"), (None, "None")],
)
def test_postdeploy_reuses_an_existing_topic_whatever_its_name(
    hooks: Hooks, identity: str | None, dead_letter: str
) -> None:
    user = {"id": "/subscriptions/x/uami", "principalId": "uami-principal"}
    hooks.state["topics"] = [
        topic("platform-acr-topic", "rg-events", None, identity, user_identity=user)
    ]
    done = hooks.run("postdeploy")
    assert done.returncode == 0, done.stderr
    (deploy,) = hooks.calls("deployment", "group", "create")
    params = deploy_parameters(deploy)
    assert params["createSystemTopic"] == "false"
    assert params["systemTopicName"] == "platform-acr-topic"
    assert params["systemTopicResourceGroup"] == "rg-events"
    assert params["deadLetterIdentity"] == dead_letter
    if dead_letter == "UserAssigned":
        assert params["deadLetterIdentityId"] == user["id"]
        assert params["deadLetterPrincipalId"] == "uami-principal"
    if dead_letter == "None":
        assert "cannot be dead-lettered" in done.stderr
    # Only reads of the topic: never an update of its tags or identity.
    verbs = {tuple(c[:3]) for c in hooks.calls("eventgrid", "system-topic")}
    assert verbs <= {("eventgrid", "system-topic", "list"), ("eventgrid", "system-topic", "show")}
    assert not hooks.calls("tag")
    assert not hooks.calls("resource", "tag")


def test_postdeploy_keeps_managing_a_topic_it_created(hooks: Hooks) -> None:
    hooks.state["topics"] = [topic("myregistry-events", "rg-registry", "prod", "SystemAssigned")]
    assert hooks.run("postdeploy").returncode == 0
    (deploy,) = hooks.calls("deployment", "group", "create")
    assert deploy_parameters(deploy)["createSystemTopic"] == "true"


def test_postdeploy_fails_loudly_when_the_function_never_appears(hooks: Hooks) -> None:
    hooks.state["function_after"] = 99
    done = hooks.run("postdeploy", RETAG_HOOK_FUNCTION_ATTEMPTS="3")
    assert done.returncode == 1
    assert "did not appear" in done.stderr
    assert not hooks.calls("deployment", "group", "create")


# --- postdeploy: the WebHook fallback waits for the system key (bounded) -----------------------


def test_webhook_fallback_waits_for_the_system_key_then_deploys(hooks: Hooks) -> None:
    hooks.state["key_after"] = 2
    done = hooks.run("postdeploy", AZURE_EVENTGRID_ENDPOINT_TYPE="WebHook")
    assert done.returncode == 0, done.stderr
    asks = hooks.calls("functionapp", "keys", "list")
    assert len(asks) == 3
    for ask in asks:  # asks whether the key exists; never prints it
        assert hooks.option(ask, "--query") == "systemKeys.eventgrid_extension != null"
    assert len(hooks.calls("deployment", "group", "create")) == 1


def test_webhook_fallback_gives_up_after_its_bound(hooks: Hooks) -> None:
    hooks.state["key_after"] = 99
    done = hooks.run(
        "postdeploy", AZURE_EVENTGRID_ENDPOINT_TYPE="WebHook", RETAG_HOOK_KEY_ATTEMPTS="4"
    )
    assert done.returncode == 1
    assert "eventgrid_extension system key did not appear" in done.stderr
    assert len(hooks.calls("functionapp", "keys", "list")) == 4
    assert not hooks.calls("deployment", "group", "create")


def test_no_key_read_with_the_default_endpoint(hooks: Hooks) -> None:
    assert hooks.run("postdeploy").returncode == 0
    assert not hooks.calls("functionapp", "keys")


def test_key_vault_reference_needs_its_vault_id_and_restarts_the_app(hooks: Hooks) -> None:
    uri = "https://kv-platform.vault.azure.net/secrets/flux-token"
    done = hooks.run("postdeploy", FLUX_RECEIVER_TOKEN_SECRET_URI=uri)
    assert done.returncode == 1
    assert "AZURE_FLUX_TOKEN_VAULT_ID" in done.stderr
    vault = f"/subscriptions/{APP_SUB}/resourceGroups/rg-kv/providers/Microsoft.KeyVault/vaults/kv"
    uri = "https://kv.vault.azure.net/secrets/flux-token"
    done = hooks.run(
        "postdeploy", FLUX_RECEIVER_TOKEN_SECRET_URI=uri, AZURE_FLUX_TOKEN_VAULT_ID=vault
    )
    assert done.returncode == 0, done.stderr
    assert len(hooks.calls("functionapp", "restart")) == 1


# --- predown: nothing deleted without proof of ownership -----------------------------------------

LABEL = "acr-retag-env=prod"


def test_predown_keeps_a_topic_it_did_not_create_and_removes_only_its_subscription(
    hooks: Hooks,
) -> None:
    shared = topic(
        "platform-acr-topic",
        "rg-events",
        None,  # untagged: someone else's
        "SystemAssigned",
        subscriptions={"retag-on-image-pushed-abc": [LABEL], "other-team": []},
    )
    hooks.state["topics"] = [shared]
    done = hooks.run("predown")
    assert done.returncode == 0, done.stderr
    assert hooks.state["deleted"] == [
        shared["id"] + "/eventSubscriptions/retag-on-image-pushed-abc"
    ]
    assert "keeping system topic platform-acr-topic" in done.stdout
    (left,) = hooks.state["topics"]
    assert left["subscriptions"] == {"other-team": []}


def test_predown_keeps_a_subscription_without_its_label(hooks: Hooks) -> None:
    """Same name, no acr-retag-env=prod label: not provably ours (say, another tool's)."""
    hooks.state["topics"] = [
        topic("t", "rg-registry", None, None, subscriptions={"retag-on-image-pushed-abc": []})
    ]
    done = hooks.run("predown")
    assert done.returncode == 0
    assert "deleted" not in hooks.state or not any(
        "eventSubscriptions" in d for d in hooks.state["deleted"]
    )
    assert "no label acr-retag-env=prod" in done.stderr


def test_predown_deletes_its_own_topic_only_when_no_other_subscription_uses_it(
    hooks: Hooks,
) -> None:
    ours = topic("myregistry-events", "rg-registry", "prod", "SystemAssigned")
    ours["subscriptions"] = {"retag-on-image-pushed-abc": [LABEL], "staging": ["acr-retag-env=stg"]}
    hooks.state["topics"] = [ours]
    done = hooks.run("predown")
    assert done.returncode == 0, done.stderr
    assert ours["id"] not in hooks.state["deleted"]
    assert "1 other event subscription(s) still use it" in done.stderr

    hooks.state["topics"][0]["subscriptions"] = {"retag-on-image-pushed-abc": [LABEL]}
    done = hooks.run("predown")
    assert done.returncode == 0, done.stderr
    assert hooks.state["deleted"][-1] == ours["id"]
    assert hooks.state["topics"] == []


def test_predown_refuses_an_untagged_topic_even_with_the_default_name(hooks: Hooks) -> None:
    hooks.state["topics"] = [topic("myregistry-events", "rg-registry", None, "SystemAssigned")]
    done = hooks.run("predown")
    assert done.returncode == 0
    assert not hooks.calls("resource", "delete")
    assert len(hooks.state["topics"]) == 1


def role_state(hooks: Hooks, identity_owner: str) -> None:
    hooks.state["resources"] = [
        {
            "id": IDENTITY_ID,
            "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
            "group": "rg-app",
            "tags": {"azd-env-name": identity_owner},
        },
    ]
    hooks.state["assignments"] = [
        {"id": "ra-ours", "scope": REGISTRY_ID, "principalId": "principal-1"},
        {"id": "ra-someone-else", "scope": REGISTRY_ID, "principalId": "principal-2"},
    ]


def test_predown_removes_only_the_app_identitys_role_assignments(hooks: Hooks) -> None:
    role_state(hooks, "prod")
    done = hooks.run("predown")
    assert done.returncode == 0, done.stderr
    assert [a["id"] for a in hooks.state["assignments"]] == ["ra-someone-else"]
    (listing,) = hooks.calls("role", "assignment", "list")
    assert hooks.option(listing, "--subscription") == REG_SUB  # the registry's subscription


def test_predown_keeps_role_assignments_when_the_identity_is_not_this_environments(
    hooks: Hooks,
) -> None:
    role_state(hooks, "someone-else")
    done = hooks.run("predown")
    assert done.returncode == 0
    assert len(hooks.state["assignments"]) == 2
    assert "does not carry azd-env-name=prod" in done.stderr


def test_predown_in_an_existing_group_deletes_only_tagged_resources_app_first(
    hooks: Hooks,
) -> None:
    def resource(kind: str, name: str, owner: str | None) -> dict[str, Any]:
        return {
            "id": f"/subscriptions/{APP_SUB}/resourceGroups/rg-app/providers/{kind}/{name}",
            "type": kind,
            "group": "rg-app",
            "tags": {"azd-env-name": owner} if owner else {},
        }

    hooks.state["resources"] = [
        resource("Microsoft.ManagedIdentity/userAssignedIdentities", "id-retag", "prod"),
        resource("Microsoft.Storage/storageAccounts", "stretag", "prod"),
        resource("Microsoft.Web/serverfarms", "plan", "prod"),
        resource("Microsoft.Web/sites", "func-retag-x", "prod"),
        resource("Microsoft.Storage/storageAccounts", "theirs", None),
        resource("Microsoft.Web/sites", "other-env-app", "staging"),
    ]
    hooks.state["resources"][0]["id"] = IDENTITY_ID
    done = hooks.run("predown", AZURE_RESOURCE_GROUP_CREATED="false")
    assert done.returncode == 0, done.stderr
    deleted = [d.rsplit("/", 1)[-1] for d in hooks.state["deleted"]]
    assert deleted == ["func-retag-x", "plan", "stretag", "id-retag"]
    assert {r["id"].rsplit("/", 1)[-1] for r in hooks.state["resources"]} == {
        "theirs",
        "other-env-app",
    }


def test_predown_leaves_a_created_group_to_azd(hooks: Hooks) -> None:
    hooks.state["resources"] = [
        {
            "id": "/x/Microsoft.Web/sites/a",
            "type": "Microsoft.Web/sites",
            "group": "rg-app",
            "tags": {"azd-env-name": "prod"},
        },
    ]
    assert hooks.run("predown").returncode == 0
    assert not hooks.calls("resource", "list")


def test_predown_never_deletes_without_a_check_just_before() -> None:
    """Every delete in predown.sh follows a read of the ownership mark it depends on."""
    text = (HOOKS / "predown.sh").read_text()
    for marker in (
        "contains(to_array(labels), 'acr-retag-env=$env_name')",
        '[ "$topic_owner" = "$env_name" ]',
        '[ "$owner" = "$env_name" ]',
        '[ "$deployed_for" = "$env_name" ]',
        '[ "$still" = "$env_name" ]',
    ):
        assert marker in text, marker
    deletes = [
        m.start()
        for m in re.finditer(
            r"delete_resource \"|az (role assignment|deployment group) delete", text
        )
    ]
    assert len(deletes) == 5


# --- PowerShell: same algorithm, same names (not run: no PowerShell here) ---------------------


def powershell_deployment_name(prefix: str, env: str) -> str:
    """Get-DeploymentName of common.ps1, re-stated from the constants read from its source."""
    source = (HOOKS / "common.ps1").read_text()
    limit = int(re.search(r"\$full\.Length -le (\d+)", source).group(1))  # type: ignore[union-attr]
    cut = int(re.search(r"\$full\.Substring\(0, (\d+)\)", source).group(1))  # type: ignore[union-attr]
    digits = int(re.search(r"\)\)\.Substring\(0, (\d+)\)", source).group(1))  # type: ignore[union-attr]
    assert "[System.Security.Cryptography.SHA256]::Create()" in source
    assert "[System.Text.Encoding]::UTF8.GetBytes($Text)" in source
    assert "ToString('x2')" in source
    full = prefix + env
    if len(full) <= limit:
        return full
    return full[:cut] + "-" + hashlib.sha256(env.encode()).hexdigest()[:digits]


@pytest.mark.parametrize("env", ["prod", "e" * 47, "e" * 48, ENV64])
@pytest.mark.parametrize("prefix", ["acr-retag-wiring-", "retag-registry-roles-", "retag-events-"])
def test_powershell_names_match_the_shell_names(prefix: str, env: str) -> None:
    assert powershell_deployment_name(prefix, env) == expected_name(prefix, env)


def test_powershell_hooks_use_the_same_deployment_names_and_parameters() -> None:
    for hook in ("postdeploy", "predown"):
        shell = (HOOKS / f"{hook}.sh").read_text()
        pwsh = (HOOKS / f"{hook}.ps1").read_text()
        prefixes = re.findall(r"(?:^|[\s\"])((?:acr-)?retag-[a-z-]*[a-z]-)(?=[\s\"])", shell)
        assert prefixes
        for prefix in prefixes:
            assert f"'{prefix}'" in pwsh, (hook, prefix)
    shell_params = hook_parameters()
    pwsh_params = set(re.findall(r'"([a-zA-Z]+)=\$', (HOOKS / "postdeploy.ps1").read_text()))
    assert shell_params == pwsh_params
