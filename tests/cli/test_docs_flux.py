"""docs/flux.md must stay true: its YAML parses, its ImagePolicy pattern is exactly what the
default template produces, and sorting by the extracted value orders tags by push time."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from retag.naming import TagTemplate
from tests.gitops.flux import yaml_documents

DOC = Path(__file__).resolve().parents[2] / "docs" / "flux.md"
DEFAULT_TEMPLATE = "{tag}_{timestamp:ms}_{digest:.12}"


def documented_policy() -> dict[str, Any]:
    (policy,) = [d for d in yaml_documents() if d.get("kind") == "ImagePolicy"]
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
        sample = template.render(source_tag, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "f" * 64)
        assert re.fullmatch(pattern, sample)
