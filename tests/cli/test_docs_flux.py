"""docs/flux.md must stay true: its YAML parses, its ImagePolicy pattern is exactly what the
default template produces, and sorting by the extracted value orders tags by push time."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from retag.naming import REVISION_LABEL, LabelError, TagTemplate
from tests.gitops.flux import ImagePolicy, PolicyError, yaml_documents

DOC = Path(__file__).resolve().parents[2] / "docs" / "flux.md"
DEFAULT_TEMPLATE = "{tag}_{timestamp:ms}_{digest:.12}"
HMCTS_PATTERN = "^prod-[a-f0-9]+-(?P<ts>[0-9]+)"
"""The filter of hmcts/cnp-flux-config's ImagePolicies (alphabetical asc), as issue 14 found it."""


def documented_policy(name: str = "myapp") -> dict[str, Any]:
    (policy,) = [
        d
        for d in yaml_documents()
        if d.get("kind") == "ImagePolicy" and d["metadata"]["name"] == name
    ]
    return policy


def test_every_yaml_block_parses_and_names_the_objects() -> None:
    kinds = [d.get("kind") for d in yaml_documents()]
    for kind in ("ImageRepository", "ImagePolicy", "ImageUpdateAutomation", "Deployment"):
        assert kind in kinds
    (repository,) = [d for d in yaml_documents() if d.get("kind") == "ImageRepository"]
    assert repository["spec"]["provider"] == "azure"
    (automation,) = [d for d in yaml_documents() if d.get("kind") == "ImageUpdateAutomation"]
    assert automation["spec"]["update"]["strategy"] == "Setters"


def test_policy_pattern_is_the_default_templates_flux_pattern() -> None:
    spec = documented_policy()["spec"]
    template = TagTemplate.parse(DEFAULT_TEMPLATE, ["latest"])
    assert spec["filterTags"]["pattern"] == template.flux_pattern("latest")
    assert spec["filterTags"]["pattern"] == r"^latest_(?P<ts>[0-9]{14}(?:[0-9]{3})?)_[a-f0-9]{12}$"
    assert spec["filterTags"]["extract"] == "$ts"
    assert spec["policy"] == {"alphabetical": {"order": "asc"}}


def test_documented_pattern_matches_generated_tags_and_orders_them_by_push_time() -> None:
    spec = documented_policy()["spec"]
    pattern = re.compile(spec["filterTags"]["pattern"])
    extract = spec["filterTags"]["extract"]
    template = TagTemplate.parse(DEFAULT_TEMPLATE, ["latest", "stable"])
    rng = random.Random(6)
    start = datetime(2026, 11, 29, 23, 7, 0, tzinfo=UTC)
    pushes = []
    for step in range(200):
        pushed_at = start + timedelta(milliseconds=step * 370 + rng.randrange(300))
        digest = "sha256:" + "".join(rng.choice("0123456789abcdef") for _ in range(64))
        pushes.append((pushed_at, template.render("latest", pushed_at, digest)))

    values = []
    for pushed_at, tag in pushes:
        match = pattern.fullmatch(tag)
        assert match is not None, tag
        value = match.expand(extract.replace("$ts", r"\g<ts>"))
        values.append((value, pushed_at))
    shuffled = values[:]
    rng.shuffle(shuffled)
    assert [p for _, p in sorted(shuffled)] == [p for p, _ in pushes]
    # Flux selects the maximum with alphabetical asc: the latest push.
    assert max(shuffled)[1] == pushes[-1][0]

    # Nothing else matches: the source tag, other source tags, hand-made or truncated tags.
    later = pushes[0][1]
    for other in [
        "latest",
        template.render("stable", start, "sha256:" + "a" * 64),
        "v1.2.3",
        later[:-1],
        later + "0",
        later.replace("latest_", "latest-"),
        later.upper(),
    ]:
        assert pattern.fullmatch(other) is None, other


def test_custom_template_table_rows_are_what_flux_pattern_computes() -> None:
    text = DOC.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \| `([^`]+)` \|$", text, flags=re.M)
    assert len(rows) >= 4
    for template_text, source_tag, pattern in rows:
        template = TagTemplate.parse(template_text, [source_tag])
        assert template.flux_pattern(source_tag) == pattern, template_text
        labels = {REVISION_LABEL: "8ba37f7" + "c" * 33}  # for label templates (revision)
        when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        sample = template.render(source_tag, when, "f" * 64, labels)
        assert re.fullmatch(pattern, sample)


# -- the worked example (prod-<sha7>-<timestamp>) -------------------------------------------------


def worked_example_template() -> TagTemplate:
    text = DOC.read_text(encoding="utf-8")
    (template_text,) = re.findall(r"^RETAG_TAG_TEMPLATE=(\S+)$", text, flags=re.M)
    (source_tags,) = re.findall(r"^RETAG_SOURCE_TAGS=(\S+)$", text, flags=re.M)
    return TagTemplate.parse(template_text, source_tags.split(","))


def test_the_worked_example_tag_is_what_the_template_renders() -> None:
    template = worked_example_template()
    assert template.text == "prod-{revision:.7}-{timestamp}"
    labels = {REVISION_LABEL: "8ba37f7c" + "0" * 32}
    when = datetime(2026, 12, 1, 9, 30, 0, tzinfo=UTC)
    tag = template.render("latest", when, "a" * 64, labels)
    assert tag == "prod-8ba37f7-20261201093000"
    assert f"myregistry.azurecr.io/myapp:{tag}" in DOC.read_text(encoding="utf-8")


def test_the_worked_example_states_the_skip_reason_the_code_gives() -> None:
    with pytest.raises(LabelError) as raised:
        worked_example_template().render("latest", datetime.now(UTC), "a" * 64, {})
    reason = str(raised.value)
    assert reason == "image has no org.opencontainers.image.revision label"
    assert f"`{reason}`" in DOC.read_text(encoding="utf-8")


def worked_example_policies() -> tuple[ImagePolicy, ImagePolicy]:
    """(the HMCTS policy, the one flux-manifests prints) as shown in the worked example, with the
    ImageRepository of section 1 (its exclusionList)."""
    hmcts = ImagePolicy.documented(name="myapp-hmcts")
    printed = ImagePolicy.documented(name="myapp-latest")
    return hmcts, printed


def test_the_printed_policy_shown_is_what_flux_manifests_prints() -> None:
    from retag.flux_objects import flux_objects

    template = worked_example_template()
    objects = flux_objects(
        login_server="myregistry.azurecr.io",
        repository="myapp",
        template=template,
        source_tags=["latest"],
    ).objects
    (printed,) = [o for o in objects if o["kind"] == "ImagePolicy"]
    assert documented_policy("myapp-latest") == printed
    assert documented_policy("myapp-hmcts")["spec"]["filterTags"]["pattern"] == HMCTS_PATTERN


def test_both_worked_example_policies_pick_the_newest_push() -> None:
    template = worked_example_template()
    rng = random.Random(14)
    tags = ["latest", "v1.2.3"]
    when = datetime(2026, 12, 1, 9, 30, 0, tzinfo=UTC)
    for _ in range(50):
        when += timedelta(seconds=rng.choice([1, 30, 3600, 86400]))
        revision = "".join(rng.choice("0123456789abcdef") for _ in range(40))
        digest = "".join(rng.choice("0123456789abcdef") for _ in range(64))
        tags.append(template.render("latest", when, digest, {REVISION_LABEL: revision}))
        for policy in worked_example_policies():
            assert policy.select(sorted(tags)) == tags[-1]


def test_what_the_worked_example_says_about_the_hmcts_pattern() -> None:
    """The stricter pattern ignores the stray tags the HMCTS one can be fooled by, and takes the
    non-hex revision fragments acr-retag may write."""
    hmcts, printed = worked_example_policies()
    newest = "prod-8ba37f7-20261201093000"
    for stray in ("prod-8ba37f7-20261201093000-hotfix", "prod-abc1234-99999999999999999"):
        assert hmcts.select(sorted([newest, stray])) == stray
        assert printed.select(sorted([newest, stray])) == newest
    with pytest.raises(PolicyError):
        hmcts.select(["prod-main-20261201093000"])
    assert printed.select(["prod-main-20261201093000"]) == "prod-main-20261201093000"


def test_the_digest_reflection_example_is_well_formed() -> None:
    """fluxcd/image-reflector-controller docs/spec/v1/imagepolicies.md: `interval` must and can
    only be set with `digestReflectionPolicy: Always`."""
    spec = documented_policy("myapp-digest")["spec"]
    assert spec["digestReflectionPolicy"] == "Always"
    assert spec["interval"]
    assert ImagePolicy.from_spec(spec).select(["latest", "v1"]) == "latest"


def test_the_receiver_shown_is_the_one_flux_manifests_prints() -> None:
    """docs/flux.md "Instant reconcile with a Receiver" shows exactly the Receiver object that
    `acr-retag flux-manifests myapp` prints when FLUX_RECEIVER_URL is set."""
    import yaml

    from retag.flux_objects import flux_objects
    from retag.naming import DEFAULT_TEMPLATE

    text = DOC.read_text()
    section = text.split("## Instant reconcile with a Receiver", 1)[1].split("\n## ", 1)[0]
    shown = yaml.safe_load(section.split("```text\n", 1)[1].split("```", 1)[0])
    printed = flux_objects(
        login_server="myregistry.azurecr.io",
        repository="myapp",
        template=TagTemplate.parse(DEFAULT_TEMPLATE, ["latest"]),
        source_tags=["latest"],
        receiver=True,
    )
    (receiver,) = [o for o in printed.objects if o["kind"] == "Receiver"]
    assert shown == receiver
