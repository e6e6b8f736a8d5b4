"""`acr-retag flux-manifests`: the YAML loads, has the right kinds, API versions and names, and
the ImagePolicy it prints, run through the Flux policy model (tests/gitops/flux.py), selects the
newest push's tag among tags the template generates and never a user tag of another shape.

Flux facts the shape checks encode: ImagePolicy/ImageRepository `image.toolkit.fluxcd.io/v1`
is GA from image-reflector-controller v1.0.0 (Flux 2.7; fluxcd/image-reflector-controller
CHANGELOG.md "1.0.0": "Promote ImagePolicy and ImageRepository APIs to v1 (GA)"); `filterTags`
`pattern`/`extract` and `policy.alphabetical.order` (fluxcd/image-reflector-controller
docs/spec/v1/imagepolicies.md); the generic-hmac Receiver `notification.toolkit.fluxcd.io/v1`
with `secretRef` (key `token`) and `resources` (https://fluxcd.io/flux/components/notification/
receivers/, Notification API reference v1).
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs; dev only
from hypothesis import given
from hypothesis import strategies as st

from retag.flux_objects import kubernetes_name, name_problem, policy_name, yaml_documents
from retag.naming import CREATED_LABEL, REVISION_LABEL, TagTemplate
from tests.cli.conftest import Run, RunCli, assert_one_line_error
from tests.gitops.flux import ImagePolicy, PolicyError

REPO_ROOT = Path(__file__).resolve().parents[2]
LOGIN = "myregistry.azurecr.io"
ENV = {"ACR_LOGIN_SERVER": LOGIN}
TOKEN = "s3cr3t-receiver-token-0123456789abcdef"
RECEIVER_ENV = {
    **ENV,
    "FLUX_RECEIVER_URL": "https://flux-webhook.example.com/hook/5f1e0c",
    "FLUX_RECEIVER_TOKEN": TOKEN,
}
START = datetime(2026, 12, 1, 9, 30, 0, tzinfo=UTC)
HMCTS_TEMPLATE = "prod-{revision:.7}-{timestamp}"


def documents(run: Run) -> list[dict[str, Any]]:
    assert run.code == 0, run.err
    docs = [d for d in yaml.safe_load_all(run.out) if d is not None]
    assert run.out.startswith("---\n")
    return docs


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def policy_model(docs: list[dict[str, Any]], source_tag: str) -> ImagePolicy:
    """The printed ImagePolicy for `source_tag` as the Flux model, with the printed
    ImageRepository's exclusionList."""
    (repository,) = by_kind(docs, "ImageRepository")
    [policy] = [
        d for d in by_kind(docs, "ImagePolicy") if d["metadata"]["name"].endswith("-" + source_tag)
    ]
    assert policy["spec"]["imageRepositoryRef"]["name"] == repository["metadata"]["name"]
    return ImagePolicy.from_spec(policy["spec"], repository["spec"]["exclusionList"])


def random_digest(rng: random.Random) -> str:
    return "sha256:" + "".join(rng.choice("0123456789abcdef") for _ in range(64))


def revision_labels(rng: random.Random) -> dict[str, str]:
    return {
        REVISION_LABEL: "".join(rng.choice("0123456789abcdef") for _ in range(40)),
        CREATED_LABEL: "2026-12-01T09:00:00Z",
    }


def select(model: ImagePolicy, tags: list[str]) -> str:
    """Flux's choice, tags listed lexically as the registry's tags/list returns them."""
    return model.select(sorted(tags))


# -- shape -------------------------------------------------------------------------------------


def test_the_default_output_is_an_image_repository_and_one_policy(cli: RunCli) -> None:
    docs = documents(cli(["flux-manifests", "team/api"], env=ENV))
    assert [d["kind"] for d in docs] == ["ImageRepository", "ImagePolicy"]
    assert {d["apiVersion"] for d in docs} == {"image.toolkit.fluxcd.io/v1"}
    repository, policy = docs
    assert repository["metadata"] == {"name": "team-api", "namespace": "flux-system"}
    assert repository["spec"] == {
        "image": f"{LOGIN}/team/api",
        "interval": "5m",
        "provider": "azure",
        "exclusionList": [r"^.*\.sig$", "^latest$"],
    }
    assert policy["metadata"] == {"name": "team-api-latest", "namespace": "flux-system"}
    template = TagTemplate.parse("{tag}_{timestamp:ms}_{digest:.12}", ["latest"])
    assert policy["spec"] == {
        "imageRepositoryRef": {"name": "team-api"},
        "filterTags": {"pattern": template.flux_pattern("latest"), "extract": "$ts"},
        "policy": {"alphabetical": {"order": "asc"}},
    }


def test_the_policy_is_the_one_docs_flux_md_documents(cli: RunCli) -> None:
    """The printed policy and docs/flux.md's (issue 12's ordering) agree on filter and order."""
    (policy,) = by_kind(documents(cli(["flux-manifests", "myapp"], env=ENV)), "ImagePolicy")
    documented = ImagePolicy.documented()
    printed = ImagePolicy.from_spec(policy["spec"])
    assert (printed.kind, printed.order, printed.pattern, printed.extract) == (
        documented.kind,
        documented.order,
        documented.pattern,
        documented.extract,
    )


def test_options_set_namespace_name_interval_template_and_source_tags(cli: RunCli) -> None:
    run = cli(
        [
            "flux-manifests",
            "myapp",
            "--namespace",
            "apps",
            "--name",
            "web",
            "--interval",
            "1m30s",
            "--template",
            "{tag}-{timestamp}",
            "--source-tag",
            "main",
            "--source-tag",
            "release",
        ],
        env={**ENV, "RETAG_SOURCE_TAGS": "main,release"},
    )
    docs = documents(run)
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("ImageRepository", "web"),
        ("ImagePolicy", "web-main"),
        ("ImagePolicy", "web-release"),
    ]
    assert {d["metadata"]["namespace"] for d in docs} == {"apps"}
    assert docs[0]["spec"]["interval"] == "1m30s"
    assert docs[0]["spec"]["exclusionList"] == [r"^.*\.sig$", "^main$", "^release$"]
    assert docs[1]["spec"]["filterTags"]["pattern"] == "^main-(?P<ts>[0-9]{14})$"
    assert docs[2]["spec"]["filterTags"]["pattern"] == "^release-(?P<ts>[0-9]{14})$"
    assert '{"$imagepolicy": "apps:web-main"}' in run.out  # the setter marker comment


def test_settings_give_the_template_and_source_tags(cli: RunCli) -> None:
    env = {**ENV, "RETAG_SOURCE_TAGS": "latest,stable", "RETAG_TAG_TEMPLATE": "{tag}.{timestamp}"}
    docs = documents(cli(["flux-manifests", "myapp"], env=env))
    patterns = {
        d["metadata"]["name"]: d["spec"]["filterTags"]["pattern"]
        for d in by_kind(docs, "ImagePolicy")
    }
    assert patterns == {
        "myapp-latest": r"^latest\.(?P<ts>[0-9]{14})$",
        "myapp-stable": r"^stable\.(?P<ts>[0-9]{14})$",
    }


# -- the printed policy selects the newest push ---------------------------------------------------


def test_default_template_policy_picks_the_newest_push_and_never_a_user_tag(cli: RunCli) -> None:
    docs = documents(cli(["flux-manifests", "myapp"], env=ENV))
    model = policy_model(docs, "latest")
    template = TagTemplate.parse("{tag}_{timestamp:ms}_{digest:.12}", ["latest"])
    rng = random.Random(14)
    user_tags = [
        "latest",
        "v1.2.3",
        "latest_99999999999999999",  # no digest part
        "latest_99999999999999999_ffffffffffff_hotfix",
        "latest_9999999999999999_ffffffffffff",  # 16 digits
        "Latest_99999999999999999_ffffffffffff",
        "latest_99999999999999999_FFFFFFFFFFFF",
        "latest-99999999999999999-ffffffffffff",
        "x-latest_99999999999999999_ffffffffffff",
    ]
    tags = list(user_tags)
    when = START
    for _ in range(60):
        when += timedelta(milliseconds=rng.choice([1, 7, 400, 999, 1000, 65_000]))
        tags.append(template.render("latest", when, random_digest(rng)))
        assert select(model, tags) == tags[-1]
    for tag in user_tags:
        with pytest.raises(PolicyError, match="cannot be empty"):  # nothing selectable
            model.select([tag])


def test_hmcts_template_policy_picks_the_newest_push(cli: RunCli) -> None:
    """`prod-{revision:.7}-{timestamp}`: the git revision sorts nothing, the push time does."""
    docs = documents(cli(["flux-manifests", "myapp", "--template", HMCTS_TEMPLATE], env=ENV))
    model = policy_model(docs, "latest")
    assert model.pattern == "^prod-[A-Za-z0-9][A-Za-z0-9._-]{0,6}-(?P<ts>[0-9]{14})$"
    template = TagTemplate.parse(HMCTS_TEMPLATE, ["latest"])
    rng = random.Random(7)
    user_tags = [
        "latest",
        "prod-8ba37f7",
        "prod-8ba37f7-2026120109300",  # 13 digits
        "prod-8ba37f7-202612010930001",  # 15 digits
        "prod-8ba37f7-99999999999999-hotfix",
        "prod-99999999999999",
        "staging-8ba37f7-99999999999999",
        "pr-12-8ba37f7-99999999999999",
        "prod-8ba37f7deadbeef-99999999999999",  # a revision longer than .7
    ]
    tags = list(user_tags)
    when = START
    for _ in range(40):
        when += timedelta(seconds=rng.choice([1, 2, 59, 3600]))
        tags.append(template.render("latest", when, random_digest(rng), revision_labels(rng)))
        assert select(model, tags) == tags[-1]
    for tag in user_tags:
        with pytest.raises(PolicyError, match="cannot be empty"):
            model.select([tag])


def test_a_rollback_to_an_old_revision_still_wins(cli: RunCli) -> None:
    """Re-pushing an old image (old revision label) gets a new stamp, so Flux deploys it."""
    docs = documents(cli(["flux-manifests", "myapp", "--template", HMCTS_TEMPLATE], env=ENV))
    model = policy_model(docs, "latest")
    template = TagTemplate.parse(HMCTS_TEMPLATE, ["latest"])
    old = {REVISION_LABEL: "0000000" + "a" * 33}
    new = {REVISION_LABEL: "fffffff" + "b" * 33}
    digest = "sha256:" + "1" * 64
    tags = [
        template.render("latest", START, digest, old),
        template.render("latest", START + timedelta(minutes=5), digest, new),
    ]
    rollback = template.render("latest", START + timedelta(minutes=9), digest, old)
    assert select(model, [*tags, rollback]) == rollback


def test_each_source_tags_policy_picks_its_own_newest_push(cli: RunCli) -> None:
    env = {**ENV, "RETAG_SOURCE_TAGS": "latest,stable"}
    docs = documents(cli(["flux-manifests", "myapp"], env=env))
    models = {tag: policy_model(docs, tag) for tag in ("latest", "stable")}
    template = TagTemplate.parse("{tag}_{timestamp:ms}_{digest:.12}", ["latest", "stable"])
    rng = random.Random(3)
    tags: list[str] = []
    newest: dict[str, str] = {}
    when = START
    for _ in range(80):
        when += timedelta(milliseconds=rng.randrange(1, 5000))
        source = rng.choice(["latest", "stable"])
        newest[source] = template.render(source, when, random_digest(rng))
        tags.append(newest[source])
        for tag, model in models.items():
            if tag in newest:
                assert select(model, tags) == newest[tag]


def test_14_and_17_digit_stamps_mixed_sort_by_push_time(cli: RunCli) -> None:
    """Tags from `{timestamp}` (before the switch to the default `{timestamp:ms}`) and after it:
    the printed policy accepts both and picks the newest push."""
    docs = documents(cli(["flux-manifests", "myapp"], env=ENV))
    model = policy_model(docs, "latest")
    seconds = TagTemplate.parse("{tag}_{timestamp}_{digest:.12}", ["latest"])
    millis = TagTemplate.parse("{tag}_{timestamp:ms}_{digest:.12}", ["latest"])
    rng = random.Random(17)
    tags: list[str] = []
    when = START
    for step in range(60):
        # 14-digit pushes at least a second apart; the switch lands in the same second.
        when += timedelta(seconds=1) if step < 30 else timedelta(milliseconds=rng.randrange(1, 900))
        template = seconds if step < 30 else millis
        tags.append(template.render("latest", when, random_digest(rng)))
        assert select(model, tags) == tags[-1]
    assert {len(re.findall(r"_([0-9]+)_", t)[0]) for t in tags} == {14, 17}


# -- Receiver ------------------------------------------------------------------------------------


def test_with_a_receiver_url_a_generic_hmac_receiver_is_printed_without_the_token(
    cli: RunCli,
) -> None:
    run = cli(["flux-manifests", "team/api"], env=RECEIVER_ENV)
    docs = documents(run)
    (receiver,) = by_kind(docs, "Receiver")
    assert receiver["apiVersion"] == "notification.toolkit.fluxcd.io/v1"
    assert receiver["metadata"] == {"name": "team-api", "namespace": "flux-system"}
    assert receiver["spec"] == {
        "type": "generic-hmac",
        "secretRef": {"name": "team-api-receiver-token"},
        "resources": [
            {
                "apiVersion": "image.toolkit.fluxcd.io/v1",
                "kind": "ImageRepository",
                "name": "team-api",
            }
        ],
    }
    assert "create secret generic team-api-receiver-token --from-file=token=" in run.out
    assert "$FLUX_RECEIVER_TOKEN" in run.out
    json_run = cli(["flux-manifests", "team/api", "--json"], env=RECEIVER_ENV)
    for text in (run.out, run.err, json_run.out, json_run.err):
        assert TOKEN not in text
        assert TOKEN[:12] not in text


def test_without_a_receiver_url_no_receiver_is_printed(cli: RunCli) -> None:
    run = cli(["flux-manifests", "myapp"], env=ENV)
    assert by_kind(documents(run), "Receiver") == []
    assert "Receiver" not in run.out


# -- --json --------------------------------------------------------------------------------------


def test_json_is_one_object_with_the_manifests_and_the_yaml(cli: RunCli) -> None:
    text = cli(["flux-manifests", "myapp"], env=RECEIVER_ENV)
    run = cli(["flux-manifests", "myapp", "--json"], env=RECEIVER_ENV)
    assert run.code == 0, run.err
    value = json.loads(run.out)
    assert value["ok"] is True
    assert value["command"] == "flux-manifests"
    assert value["error"] is None
    assert (value["registry"], value["repository"], value["namespace"]) == (
        LOGIN,
        "myapp",
        "flux-system",
    )
    assert value["template"] == "{tag}_{timestamp:ms}_{digest:.12}"
    assert value["source_tags"] == ["latest"]
    assert value["receiver"] is True
    assert value["yaml"] == text.out
    assert value["manifests"] == documents(text)


# -- bad input: one line, exit 2 -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--name", "Bad_Name"], "name 'Bad_Name' is not a Kubernetes name"),
        (["--name", "a" * 64], "is 64 characters long (at most 63)"),
        (["--name=-web"], "is not a Kubernetes name"),
        (["--namespace", "Flux.System"], "namespace 'Flux.System' is not a Kubernetes name"),
        (["--interval", "7d"], "interval '7d' is not a duration"),
        (["--interval", "0s"], "interval '0s' is zero"),
        (["--template", "{tag}-{digest:.12}"], "has no {timestamp}: Flux cannot order its tags"),
        (["--template", "{tag}-{nope}"], "--template"),
        (["--source-tag", "bad tag"], "tag 'bad tag'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli: RunCli, argv: list[str], fragment: str) -> None:
    run = cli(["flux-manifests", "myapp", *argv], env=ENV)
    assert run.code == 2
    assert run.out == ""
    assert_one_line_error(run, fragment)
    run = cli(["flux-manifests", "myapp", *argv, "--json"], env=ENV)
    assert run.code == 2
    value = json.loads(run.out)
    assert (value["ok"], value["command"]) == (False, "flux-manifests")
    assert fragment in value["error"]


def test_a_bad_repository_and_a_missing_login_server_are_usage_errors(cli: RunCli) -> None:
    run = cli(["flux-manifests", "Team/API"], env=ENV)
    assert run.code == 2
    assert_one_line_error(run, "repository 'Team/API'")
    run = cli(["flux-manifests", "myapp"], env={})
    assert run.code == 2
    assert_one_line_error(run, "settings: ACR_LOGIN_SERVER")


def test_a_template_without_tag_and_several_source_tags_warns(cli: RunCli) -> None:
    env = {**ENV, "RETAG_SOURCE_TAGS": "latest,stable"}
    run = cli(["flux-manifests", "myapp", "--template", HMCTS_TEMPLATE], env=env)
    assert run.code == 0
    assert run.err.startswith("acr-retag: warning: template 'prod-{revision:.7}-{timestamp}'")
    assert len(by_kind(documents(run), "ImagePolicy")) == 2


def test_a_source_tag_outside_the_settings_warns(cli: RunCli) -> None:
    run = cli(["flux-manifests", "myapp", "--source-tag", "stable"], env=ENV)
    assert run.code == 0
    assert run.err.splitlines() == [
        "acr-retag: warning: source tag 'stable' is not in RETAG_SOURCE_TAGS (latest): acr-retag "
        "gives its pushes no tag, so its ImagePolicy selects nothing until you add it there"
    ]
    assert [d["metadata"]["name"] for d in by_kind(documents(run), "ImagePolicy")] == [
        "myapp-stable"
    ]


def test_source_tags_whose_policy_names_collide_are_refused(cli: RunCli) -> None:
    env = {**ENV, "RETAG_SOURCE_TAGS": "Latest,latest"}
    run = cli(["flux-manifests", "myapp"], env=env)
    assert run.code == 2
    assert_one_line_error(run, "give the same ImagePolicy name 'myapp-latest'")


# -- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("repository", "name"),
    [
        ("myapp", "myapp"),
        ("team/api", "team-api"),
        ("team/sub/api.v2__x-y", "team-sub-api-v2-x-y"),
        ("a" * 70, "a" * 54 + "-" + kubernetes_name("a" * 70)[-8:]),
    ],
)
def test_names_are_derived_from_the_repository(repository: str, name: str) -> None:
    assert kubernetes_name(repository) == name
    assert name_problem(name) is None


def test_long_names_are_cut_with_a_hash_and_stay_distinct() -> None:
    one, two = "team/" + "x" * 80 + "/one", "team/" + "x" * 80 + "/two"
    assert kubernetes_name(one) != kubernetes_name(two)
    assert len(kubernetes_name(one)) == 63
    assert kubernetes_name(one) == kubernetes_name(one)
    long_policy = policy_name("a" * 63, "latest")
    assert name_problem(long_policy) is None
    assert long_policy != policy_name("a" * 63, "stable")


_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"


@given(
    st.from_regex(rf"\A{_COMPONENT}(?:/{_COMPONENT}){{0,3}}\Z"),
    st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z"),
)
def test_every_repository_and_tag_gives_valid_deterministic_names(
    repository: str, tag: str
) -> None:
    base = kubernetes_name(repository)
    assert name_problem(base) is None
    assert kubernetes_name(repository) == base
    if re.search(r"[A-Za-z0-9]", tag):
        assert name_problem(policy_name(base, tag)) is None


# -- the YAML writer -----------------------------------------------------------------------------


def test_hostile_strings_cannot_change_the_document() -> None:
    hostile = [
        "a: b",
        "- x",
        "# not a comment",
        '"quoted" \\ back',
        "line\nbreak\ttab",
        "{flow: map}",
        "&anchor *alias !tag",
        "yes",
        "null",
        "0x10",
        "",
        "é ☃ \u2028",
        "---",
    ]
    document = {"kind": "Test", "data": {"values": hostile, "key: with colon": hostile[0]}}
    text = yaml_documents([document], [["a comment", "another: comment"]])
    assert list(yaml.safe_load_all(text)) == [document]


def test_empty_collections_and_scalars() -> None:
    document = {"a": {}, "b": [], "c": 3, "d": True, "e": [{"x": "1", "y": {"z": "2"}}, "s"]}
    assert yaml.safe_load(yaml_documents([document])) == document


# -- the real entry point ------------------------------------------------------------------------


def test_python_m_retag_flux_manifests(tmp_path: Path) -> None:
    """The console entry point end to end (a new process, settings from its environment)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACR_", "RETAG_", "FLUX_"))}
    env.update(RECEIVER_ENV)
    env["RETAG_SOURCE_TAGS"] = "latest,stable"
    env["PYTHONPATH"] = str(REPO_ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "retag", "flux-manifests", "team/api", "--source-tag", "stable"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    docs = [d for d in yaml.safe_load_all(done.stdout) if d is not None]
    assert [d["kind"] for d in docs] == ["ImageRepository", "ImagePolicy", "Receiver"]
    assert docs[1]["metadata"]["name"] == "team-api-stable"
    assert TOKEN not in done.stdout
