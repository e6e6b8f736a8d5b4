"""tag, list, push-sample and doctor against the emulator: real SDK, real HTTPS, real tokens."""

from __future__ import annotations

import json
import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.containerregistry import ContainerRegistryClient

from emulator import Emulator
from tests.cli.conftest import RunCli, assert_one_line_error, wait_logged
from tests.support.images import docker_image, oci_image, oci_index, push_image

GENERATED = re.compile(r"latest_(?P<ts>[0-9]{17})_(?P<hex>[a-f0-9]{12})")


def sdk(acr: Emulator) -> ContainerRegistryClient:
    return ContainerRegistryClient(acr.endpoint, None, connection_verify=acr.ca_bundle)


def tags_of(acr: Emulator, repository: str) -> dict[str, str]:
    with sdk(acr) as client:
        return {
            props.name: props.digest
            for props in client.list_tag_properties(repository)  # type: ignore[attr-defined]
        }


def last_updated(acr: Emulator, repository: str, tag: str) -> datetime:
    with sdk(acr) as client:
        when = client.get_tag_properties(repository, tag).last_updated_on
    assert when is not None
    return when.astimezone(UTC)


def methods(acr: Emulator) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in acr.requests()]


# -- push-sample -> tag -> list ---------------------------------------------------------------


def test_push_sample_then_tag_then_list_end_to_end(
    cli: RunCli, env: dict[str, str], acr: Emulator
) -> None:
    acr.set_clock(datetime(2026, 11, 29, 23, 7, 0, tzinfo=UTC))
    pushed = cli(["push-sample", "e2e/app"], env=env)
    assert pushed.code == 0, pushed.err
    digest = pushed.out.strip()
    assert re.fullmatch(r"sha256:[a-f0-9]{64}", digest)
    assert acr.tag_digest("e2e/app", "latest") == digest

    tagged = cli(["tag", "e2e/app"], env=env)
    assert tagged.code == 0, tagged.err
    new_tag = tagged.out.strip()
    # {timestamp} is the source tag's push time (the emulator's clock), {digest:.12} its digest.
    pushed_at = last_updated(acr, "e2e/app", "latest")
    assert datetime(2026, 11, 29, 23, 7, 0, tzinfo=UTC) <= pushed_at
    millis = f"{pushed_at.microsecond // 1000:03d}"
    assert new_tag == f"latest_{pushed_at:%Y%m%d%H%M%S}{millis}_{digest[7:19]}"
    assert acr.tag_digest("e2e/app", new_tag) == digest

    listed = cli(["list", "e2e/app"], env=env)
    assert listed.code == 0, listed.err
    header, *rows = listed.out.splitlines()
    assert header.split() == ["TAG", "DIGEST", "LAST", "UPDATED", "(UTC)", "KIND", "LOCKED"]
    table = {row.split()[0]: row.split()[1:] for row in rows}
    short = digest[:19]
    assert table["latest"] == [short, f"{pushed_at:%Y-%m-%dT%H:%M:%SZ}", "source", "-"]
    assert table[new_tag][0] == short
    assert table[new_tag][2:] == ["generated", "-"]
    assert len(rows) == 2


def test_tag_is_idempotent_and_uses_exactly_the_re_tag_requests(
    cli: RunCli, env: dict[str, str], acr: Emulator
) -> None:
    digest = cli(["push-sample", "e2e/idem:latest"], env=env).out.strip()
    acr.clear_requests()
    first = cli(["tag", "e2e/idem", "--json"], env=env)
    wait_logged(acr, "PUT", f"/v2/e2e/idem/manifests/{json.loads(first.out)['tag']}")
    # One read of the source tag, then the Function's re-tag: the tags on the digest and the
    # manifest read at once, then the PUT. (A fresh process also meets one 401 challenge + one
    # token request per kind of request.)
    answered = [
        f"{r['method']} {r['path']}"
        for r in acr.requests()
        if r["status"] < 400 and not r["path"].startswith("/oauth2/")
    ]
    tag = json.loads(first.out)["tag"]
    assert answered[0] == "GET /acr/v1/e2e/idem/_tags/latest", methods(acr)
    assert sorted(answered[1:3]) == [
        "GET /acr/v1/e2e/idem/_tags",
        f"GET /v2/e2e/idem/manifests/{digest}",
    ], methods(acr)
    assert answered[3:] == [f"PUT /v2/e2e/idem/manifests/{tag}"], methods(acr)
    assert json.loads(first.out)["written"] is True

    # Again (a re-run pipeline step, or the Function got there first): nothing is written.
    acr.clear_requests()
    second = cli(["tag", "e2e/idem", "--json"], env=env)
    assert first.code == second.code == 0
    result = json.loads(second.out)
    assert result["tag"] == tag
    assert result["written"] is False
    assert result["digest"] == digest
    assert result["repository"] == "e2e/idem"
    assert result["source_tag"] == "latest"
    assert result["timestamp_source"] == "source tag lastUpdateTime"
    assert not [r for r in acr.requests() if r["method"] == "PUT"], methods(acr)
    assert set(tags_of(acr, "e2e/idem")) == {"latest", tag}


def test_second_push_of_latest_gets_a_second_tag(
    cli: RunCli, env: dict[str, str], acr: Emulator
) -> None:
    cli(["push-sample", "e2e/twice"], env=env)
    first = cli(["tag", "e2e/twice"], env=env).out.strip()
    acr.advance_clock(60)
    second_digest = cli(["push-sample", "e2e/twice"], env=env).out.strip()
    second = cli(["tag", "e2e/twice"], env=env).out.strip()
    assert first != second
    first_ts = GENERATED.fullmatch(first)
    second_ts = GENERATED.fullmatch(second)
    assert first_ts
    assert second_ts
    assert int(second_ts["ts"]) > int(first_ts["ts"])
    assert acr.tag_digest("e2e/twice", second) == second_digest


def test_tag_keeps_the_digest_of_an_index_and_a_docker_manifest(
    cli: RunCli, env: dict[str, str], acr: Emulator
) -> None:
    for repository, image in (
        ("e2e/index", oci_index(seed=1)),
        ("e2e/docker", docker_image(seed=2)),
    ):
        push_image(acr.endpoint, repository, image, "latest", verify=acr.ca_bundle)
        run = cli(["tag", repository], env=env)
        assert run.code == 0, run.err
        assert acr.tag_digest(repository, run.out.strip()) == image.digest


def test_tag_with_digest_template_and_source_tag(
    cli: RunCli, env: dict[str, str], acr: Emulator
) -> None:
    digest = cli(["push-sample", "e2e/opts:stable"], env=env).out.strip()
    run = cli(
        ["tag", "e2e/opts", "--source-tag", "stable", "--template", "{tag}-{timestamp}"], env=env
    )
    assert run.code == 0, run.err
    assert re.fullmatch(r"stable-[0-9]{14}", run.out.strip())
    assert acr.tag_digest("e2e/opts", run.out.strip()) == digest

    before = datetime.now(UTC).replace(microsecond=0)
    run = cli(["tag", "e2e/opts", "--source-tag", "stable", "--digest", digest, "--json"], env=env)
    assert run.code == 0, run.err
    result = json.loads(run.out)
    assert result["timestamp_source"] == "now (--digest)"
    stamped = datetime.fromisoformat(result["timestamp"].replace("Z", "+00:00"))
    assert stamped >= before
    assert result["tag"].startswith("stable_")

    # A digest the source tag does not point to is refused: a tag there would win in Flux.
    run = cli(["tag", "e2e/opts", "--digest", digest], env=env)
    assert run.code == 1
    assert "does not point to" in run.err
    assert acr.tag_digest("e2e/opts", result["tag"]) == digest


def test_tag_with_a_revision_label_template(
    cli: RunCli, env: dict[str, str], acr: Emulator
) -> None:
    """The pipeline step with `prod-{revision:.7}-{timestamp}`: the image's revision label makes the
    tag; an image without the label fails loudly (exit 1, one line) and nothing is written."""
    template = ["--template", "prod-{revision:.7}-{timestamp}"]
    labelled = oci_image(seed=31, labels={"org.opencontainers.image.revision": "8ba37f7" * 5})
    push_image(acr.endpoint, "e2e/labels", labelled, "latest", verify=acr.ca_bundle)
    run = cli(["tag", "e2e/labels", *template, "--json"], env=env)
    assert run.code == 0, run.err
    result = json.loads(run.out)
    assert re.fullmatch(r"prod-8ba37f7-[0-9]{14}", result["tag"])
    assert result["written"] is True
    assert acr.tag_digest("e2e/labels", result["tag"]) == labelled.digest

    push_image(acr.endpoint, "e2e/labels", oci_image(seed=32), "latest", verify=acr.ca_bundle)
    run = cli(["tag", "e2e/labels", *template], env=env)
    assert run.code == 1
    assert_one_line_error(run, "image has no org.opencontainers.image.revision label")
    assert set(tags_of(acr, "e2e/labels")) == {"latest", result["tag"]}


def test_tag_never_moves_an_existing_tag_of_another_digest(
    cli: RunCli, env: dict[str, str], acr: Emulator
) -> None:
    """With a template that needs the read-before-write (no digest in it), a tag of the same
    name on another digest is refused with exit 1 and stays where it was."""
    digest = cli(["push-sample", "e2e/clash"], env=env).out.strip()
    expected = "latest-" + last_updated(acr, "e2e/clash", "latest").strftime("%Y%m%d%H%M%S")
    squatter = cli(["push-sample", f"e2e/clash:{expected}"], env=env).out.strip()
    assert squatter != digest
    run = cli(["tag", "e2e/clash", "--template", "{tag}-{timestamp}"], env=env)
    assert run.code == 1
    assert_one_line_error(run, f"tagging e2e/clash@{digest[:19]} as {expected}", "already exists")
    assert acr.tag_digest("e2e/clash", expected) == squatter


def test_tag_errors_are_one_line_exit_1(cli: RunCli, env: dict[str, str]) -> None:
    run = cli(["tag", "e2e/does-not-exist"], env=env)
    assert run.code == 1
    assert_one_line_error(run, "reading tag e2e/does-not-exist:latest", "not found")

    cli(["push-sample", "e2e/errs:v1"], env=env)
    run = cli(["tag", "e2e/errs"], env=env)
    assert run.code == 1
    assert_one_line_error(run, "e2e/errs:latest", "not found")

    run = cli(["tag", "e2e/errs", "--digest", "sha256:" + "0" * 64], env=env)
    assert run.code == 1
    assert_one_line_error(run, "not found")


# -- list ---------------------------------------------------------------------------------------


def test_list_json_kinds_and_locks(cli: RunCli, env: dict[str, str], acr: Emulator) -> None:
    digest = cli(["push-sample", "e2e/list"], env=env).out.strip()
    generated = cli(["tag", "e2e/list"], env=env).out.strip()
    cli(["push-sample", "e2e/list:v1.2.3"], env=env)
    with sdk(acr) as client:
        client.update_tag_properties("e2e/list", "v1.2.3", can_delete=False)
    run = cli(["list", "e2e/list", "--json"], env=env)
    assert run.code == 0, run.err
    # Issue 11: one JSON object (the envelope), the rows under "tags" (was a bare array).
    document = json.loads(run.out)
    assert (document["ok"], document["command"], document["error"]) == (True, "list", None)
    assert (document["count"], document["source_tags"], document["generated_tags"]) == (3, 1, 1)
    assert document["other_tags"] == 1
    rows = {row["tag"]: row for row in document["tags"]}
    assert set(rows) == {"latest", generated, "v1.2.3"}
    assert rows["latest"]["kind"] == "source"
    assert rows[generated]["kind"] == "generated"
    assert rows[generated]["digest"] == digest
    assert rows["v1.2.3"]["kind"] == "other"
    assert rows["v1.2.3"]["locked"] is True
    assert rows["v1.2.3"]["can_delete"] is False
    assert rows["latest"]["locked"] is False

    table = cli(["list", "e2e/list"], env=env)
    locked_row = next(line for line in table.out.splitlines() if line.startswith("v1.2.3"))
    assert locked_row.split()[-2:] == ["other", "locked"]


def test_list_unknown_repository_is_one_line_exit_1(cli: RunCli, env: dict[str, str]) -> None:
    run = cli(["list", "e2e/nothing-here"], env=env)
    assert run.code == 1
    assert_one_line_error(run, "listing tags of e2e/nothing-here", "not found")


def test_registry_flag_overrides_environment(
    cli: RunCli, env: dict[str, str], acr: Emulator
) -> None:
    cli(["push-sample", "e2e/flags"], env=env)
    wrong = {**env, "ACR_LOGIN_SERVER": "127.0.0.1:1"}
    run = cli(["list", "e2e/flags", "--registry", acr.login_server], env=wrong)
    assert run.code == 0, run.err
    assert "latest" in run.out


@pytest.mark.usefixtures("isolated_cwd")
def test_env_file_alone_is_enough_and_the_environment_wins(
    cli: RunCli, env: dict[str, str]
) -> None:
    cli(["push-sample", "e2e/dotenv"], env=env)
    Path(".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    run = cli(["list", "e2e/dotenv"], env={})
    assert run.code == 0, run.err
    assert "latest" in run.out
    # A stale login server in the file loses to the explicit environment.
    Path(".env").write_text(
        "".join(f"{k}={v}\n" for k, v in {**env, "ACR_LOGIN_SERVER": "127.0.0.1:1"}.items())
    )
    run = cli(["list", "e2e/dotenv"], env={"ACR_LOGIN_SERVER": env["ACR_LOGIN_SERVER"]})
    assert run.code == 0, run.err
    assert "latest" in run.out


# -- push-sample -------------------------------------------------------------------------------


def test_push_sample_json_and_random_content(
    cli: RunCli, env: dict[str, str], acr: Emulator
) -> None:
    first = json.loads(cli(["push-sample", "e2e/sample:v1", "--json"], env=env).out)
    second = json.loads(cli(["push-sample", "e2e/sample:v1", "--json"], env=env).out)
    assert first["repository"] == "e2e/sample"
    assert first["tag"] == "v1"
    assert first["registry"] == acr.login_server
    assert first["digest"] != second["digest"]
    assert acr.tag_digest("e2e/sample", "v1") == second["digest"]


# -- network ------------------------------------------------------------------------------------


def test_unreachable_registry_is_one_line_exit_1(cli: RunCli, env: dict[str, str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        run = cli(["list", "myapp"], env={**env, "ACR_LOGIN_SERVER": f"127.0.0.1:{port}"})
    assert run.code == 1
    assert_one_line_error(run, "listing tags of myapp", "unreachable or failing")


def test_server_errors_are_one_line_exit_1(cli: RunCli, env: dict[str, str], acr: Emulator) -> None:
    cli(["push-sample", "e2e/faulty"], env=env)
    acr.set_faults(error_rate=1.0, error_status=500, seed=1)
    try:
        run = cli(["list", "e2e/faulty"], env=env)
    finally:
        acr.clear_faults()
    assert run.code == 1
    assert_one_line_error(run, "listing tags of e2e/faulty")


# -- prune and reconcile through this CLI (same settings sources, same registry) ---------------


def test_reconcile_catches_up_a_push_nobody_tagged(
    cli: RunCli, env: dict[str, str], acr: Emulator
) -> None:
    # Pushed an hour ago (older than RECONCILE_GRACE=15m): the event path had its chance.
    acr.set_clock(datetime.now(UTC) - timedelta(hours=1))
    digest = cli(["push-sample", "e2e/missed"], env=env).out.strip()
    run = cli(["reconcile", "--repository", "e2e/missed"], env=env)
    assert run.code == 0, run.out + run.err
    generated = [
        row
        for row in json.loads(cli(["list", "e2e/missed", "--json"], env=env).out)["tags"]
        if row["kind"] == "generated"
    ]
    assert len(generated) == 1
    assert generated[0]["digest"] == digest
    # Same timestamp rule as `tag`: running `tag` now finds the same tag, nothing new.
    assert cli(["tag", "e2e/missed"], env=env).out.strip() == generated[0]["tag"]


def test_prune_dry_run_then_delete_through_this_cli(
    cli: RunCli, env: dict[str, str], acr: Emulator
) -> None:
    acr.set_clock(datetime.now(UTC) - timedelta(hours=3))  # three pushes, hours ago
    tags = []
    for _ in range(3):
        cli(["push-sample", "e2e/prune"], env=env)
        tags.append(cli(["tag", "e2e/prune"], env=env).out.strip())
        acr.advance_clock(120)
    flags = ["--repository", "e2e/prune", "--keep", "1", "--min-age", "30m"]
    dry = cli(["prune", *flags], env=env)
    assert dry.code == 0, dry.out + dry.err
    assert set(tags_of(acr, "e2e/prune")) == {"latest", *tags}
    run = cli(["prune", *flags, "--mode", "delete", "--json"], env=env)
    assert run.code == 0, run.out + run.err
    # Kept: the source tag, the generated tag on its digest, and the newest other (--keep 1).
    assert set(tags_of(acr, "e2e/prune")) == {"latest", tags[2], tags[1]}
    report = json.dumps(json.loads(run.out))
    assert tags[0] in report


def test_prune_and_reconcile_use_the_cli_settings_sources(cli: RunCli) -> None:
    for command in ("prune", "reconcile"):
        run = cli([command], env={})
        assert run.code == 2
        assert_one_line_error(run, "settings: ACR_LOGIN_SERVER")
