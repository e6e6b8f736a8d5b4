"""doctor and permission errors: a registry that refuses anonymous access, identities with only
some roles, a credential that works and one that cannot get a token."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from emulator import Emulator
from tests.cli.conftest import Run, RunCli, assert_one_line_error, emulator_env, wait_logged

SECRET_AAD_TOKEN = "aad-token-that-must-never-be-printed"


class StaticCredential:
    """A real TokenCredential (the protocol azure-core defines), like a managed identity."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(SECRET_AAD_TOKEN, int(time.time()) + 3600)


class NoLoginCredential:
    """What DefaultAzureCredential does on a machine with no `az login` and no identity."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        raise ClientAuthenticationError(
            "DefaultAzureCredential failed to retrieve a token from the included credentials."
        )


def checks(run: Run) -> dict[str, tuple[str, str]]:
    result = {}
    for line in run.out.splitlines():
        status, rest = line.split(None, 1)
        name, _, detail = rest.partition("  ")
        result[name.strip()] = (status, detail.strip())
    return result


def test_doctor_all_ok_touches_only_its_scratch_tag(cli: RunCli, acr: Emulator) -> None:
    env = emulator_env(acr)
    user_digest = cli(["push-sample", "doc/app:latest"], env=env).out.strip()
    acr.clear_requests()
    run = cli(["doctor", "--repository", "doc/app"], env=env)
    assert run.code == 0, run.out + run.err
    result = checks(run)
    assert [status for status, _ in result.values()] == [
        "OK",  # settings
        "SKIP",  # credential (anonymous)
        "OK",  # reachable
        "OK",  # catalog
        "OK",  # pull (list tags)
        "OK",  # push
        "OK",  # pull (manifest)
        "OK",  # delete tag
        "OK",  # delete manifest
    ], run.out
    assert "answered 401 with a Bearer challenge" in result["reachable"][1]
    # The user's tag is untouched; the scratch tag and manifest are gone.
    assert acr.tag_digest("doc/app", "latest") == user_digest
    wait_logged(acr, "DELETE", "/v2/doc/app/manifests/sha256:")
    done = [r for r in acr.requests() if r["status"] < 400]  # not the 401 challenges
    deletes = [r for r in done if r["method"] == "DELETE"]
    assert len(deletes) == 2
    assert "acr-retag-doctor-" in deletes[0]["path"]
    assert deletes[0]["path"].startswith("/acr/v1/doc/app/_tags/acr-retag-doctor-")
    assert deletes[1]["path"].startswith("/v2/doc/app/manifests/sha256:")
    assert user_digest not in deletes[1]["path"]
    writes = [r for r in done if r["method"] in ("PUT", "PATCH")]
    assert all("acr-retag-doctor-" in r["path"] or "/blobs/" in r["path"] for r in writes)


def test_doctor_on_a_new_repository_says_it_created_it(cli: RunCli, acr: Emulator) -> None:
    run = cli(["doctor", "--repository", "doc/brand-new", "--json"], env=emulator_env(acr))
    assert run.code == 0, run.out
    report = json.loads(run.out)
    assert report["ok"] is True
    by_name = {c["name"]: c for c in report["checks"]}
    assert "does not exist yet" in by_name["pull (list tags)"]["detail"]
    assert "this created repository doc/brand-new" in by_name["push (scratch tag)"]["detail"]
    assert "was created by this check" in by_name["delete (scratch manifest)"]["detail"]


def test_doctor_without_repository_skips_the_write_checks(cli: RunCli, acr: Emulator) -> None:
    acr.clear_requests()
    run = cli(["doctor"], env=emulator_env(acr))
    assert run.code == 0
    assert checks(run)["repository"][0] == "SKIP"
    assert not [
        r
        for r in acr.requests()
        if r["method"] in ("PUT", "PATCH", "DELETE", "POST")
        and not r["path"].startswith("/oauth2/")
    ]


def test_doctor_with_a_working_credential_acquires_a_token_and_never_prints_it(
    cli: RunCli, acr: Emulator
) -> None:
    credential = StaticCredential()
    run = cli(
        ["doctor", "--repository", "doc/cred"],
        env=emulator_env(acr, "default"),
        credential=credential,
    )
    assert run.code == 0, run.out
    status, detail = checks(run)["credential"]
    assert status == "OK"
    assert "token acquired for https://containerregistry.azure.net/.default" in detail
    assert ("https://containerregistry.azure.net/.default",) in credential.scopes
    printed = run.out + run.err
    assert SECRET_AAD_TOKEN not in printed
    for token in acr.issued_tokens():
        assert token not in printed


def test_doctor_with_no_credential_fails_at_the_credential_check(
    cli: RunCli, acr: Emulator
) -> None:
    acr.clear_requests()
    run = cli(["doctor"], env=emulator_env(acr, "default"), credential=NoLoginCredential())
    assert run.code == 1
    status, detail = checks(run)["credential"]
    assert status == "FAIL"
    assert "could not get a Microsoft Entra token" in detail
    assert "az login" in detail
    assert acr.requests() == []


def test_unknown_repository_list_and_tag(cli: RunCli, acr: Emulator) -> None:
    run = cli(["list", "doc/missing"], env=emulator_env(acr))
    assert run.code == 1
    assert_one_line_error(run, "not found")


# -- permissions -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def locked_acr() -> Iterator[Emulator]:
    """A registry with anonymous access disabled, as every real ACR by default."""
    with Emulator(anonymous=False) as emulator:
        yield emulator


@pytest.mark.parametrize(
    ("argv", "role", "abac_role"),
    [
        (["list", "app"], "AcrPull", "Container Registry Repository Reader"),
        (["tag", "app"], "AcrPull", "Container Registry Repository Reader"),
        (["push-sample", "app"], "AcrPush", "Container Registry Repository Writer"),
    ],
)
def test_401_names_the_role_to_grant(
    cli: RunCli, locked_acr: Emulator, argv: list[str], role: str, abac_role: str
) -> None:
    """The role sentence is `retag.registry.required_role`'s, said once (issue 11: the CLI no
    longer strips the adapter's hint with a regex to add its own wording of the same fact)."""
    run = cli(argv, env=emulator_env(locked_acr))
    assert run.code == 1
    line = assert_one_line_error(
        run,
        "permission denied",
        f"on {locked_acr.login_server}",
        f"the identity needs {role} (or '{abac_role}' on ABAC-enabled registries)",
        "docs/deploy.md",
        "ACR_CREDENTIAL=anonymous",
    )
    assert line.count("the identity needs") == 1
    for token in locked_acr.issued_tokens():
        assert token not in line


def test_doctor_names_every_missing_role(cli: RunCli, locked_acr: Emulator) -> None:
    run = cli(["doctor", "--repository", "app"], env=emulator_env(locked_acr))
    assert run.code == 1
    result = checks(run)
    assert result["reachable"][0] == "OK"
    assert result["catalog"][0] == "FAIL"
    assert "Catalog Lister" in result["catalog"][1]
    assert result["pull (list tags)"][0] == "FAIL"
    assert "AcrPull" in result["pull (list tags)"][1]
    assert result["push (scratch tag)"][0] == "FAIL"
    assert "AcrPush" in result["push (scratch tag)"][1]
    assert "delete (scratch tag)" not in result  # nothing was pushed, nothing to delete


def test_doctor_with_push_but_no_delete_names_acr_delete_and_the_leftover(cli: RunCli) -> None:
    actions = {"pull", "push", "metadata_read", "metadata_write"}  # like AcrPush without AcrDelete
    with Emulator(anonymous=True, anonymous_actions=actions) as acr:
        run = cli(["doctor", "--repository", "app"], env=emulator_env(acr))
        assert run.code == 1
        result = checks(run)
        assert result["push (scratch tag)"][0] == "OK"
        assert result["pull (manifest)"][0] == "OK"
        assert result["delete (scratch tag)"][0] == "FAIL"
        assert "the identity needs AcrDelete" in result["delete (scratch tag)"][1]
        assert "Container Registry Repository Contributor" in result["delete (scratch tag)"][1]
        assert result["cleanup"][0] == "INFO"
        scratch = result["push (scratch tag)"][1].split()[3]  # "pushed scratch image app:TAG ..."
        assert acr.tag_digest("app", scratch.split(":", 1)[1]) is not None


def test_doctor_unreachable_registry(cli: RunCli, acr: Emulator) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        run = cli(["doctor"], env={**emulator_env(acr), "ACR_LOGIN_SERVER": f"127.0.0.1:{port}"})
    assert run.code == 1
    status, detail = checks(run)["reachable"]
    assert status == "FAIL"
    assert "unreachable" in detail
    assert "catalog" not in checks(run)


def test_doctor_bad_settings_exit_2(cli: RunCli) -> None:
    run = cli(["doctor"], env={"ACR_LOGIN_SERVER": "not a host"})
    assert run.code == 2
    status, detail = checks(run)["settings"]
    assert status == "FAIL"
    assert "ACR_LOGIN_SERVER" in detail
