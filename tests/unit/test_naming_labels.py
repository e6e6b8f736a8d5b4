"""Label fields of RETAG_TAG_TEMPLATE (`{revision}`, `{created}`): parsing, rendering, what is
rejected, recognition (prune, reconcile, the event filter) and the Flux pattern. Pure."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retag.naming import CREATED_LABEL, REVISION_LABEL, LabelError, TagTemplate
from retag.oci import is_valid_tag

DIGEST = "sha256:" + "3f2a9c1b7d4e" + "0" * 52
WHEN = datetime(2026, 12, 1, 9, 30, 0, 250000, tzinfo=UTC)
HMCTS = TagTemplate.parse("prod-{revision:.7}-{timestamp}", ["latest"])


def test_hmcts_template_renders_their_shape_and_their_policy_selects_it() -> None:
    """HMCTS ImagePolicy pattern `^prod-[a-f0-9]+-(?P<ts>[0-9]+)` (hmcts/cnp-flux-config,
    apps/*/image-policy; design.md section 4)."""
    tag = HMCTS.render("latest", WHEN, DIGEST, {REVISION_LABEL: "8BA37F7C0FFEE"})
    assert tag == "prod-8ba37f7-20261201093000"
    assert re.fullmatch(r"prod-[a-f0-9]+-(?P<ts>[0-9]+)", tag)
    assert HMCTS.is_generated(tag)
    assert HMCTS.is_generated(tag, "latest")
    assert HMCTS.flux_pattern("latest") == (
        "^prod-[A-Za-z0-9][A-Za-z0-9._-]{0,6}-(?P<ts>[0-9]{14})$"
    )
    assert re.fullmatch(HMCTS.flux_pattern("latest"), tag)
    assert HMCTS.label_names == (REVISION_LABEL,)
    assert HMCTS.needs_existing_check  # no {digest}: read before write, never overwrite


def test_templates_without_label_fields_need_no_labels() -> None:
    plain = TagTemplate.parse("{tag}_{timestamp:ms}_{digest:.12}", ["latest"])
    assert plain.label_names == ()
    assert plain.render("latest", WHEN, DIGEST) == plain.render("latest", WHEN, DIGEST, {})


def test_revision_precision_and_whole_value() -> None:
    full = TagTemplate.parse("{tag}-{revision}-{timestamp}", ["latest"])
    assert full.render("latest", WHEN, DIGEST, {REVISION_LABEL: "v1.2.3"}) == (
        "latest-v1.2.3-20261201093000"
    )
    with pytest.raises(
        LabelError, match=re.escape("is 65 characters long; {revision} holds at most 64")
    ):
        full.render("latest", WHEN, DIGEST, {REVISION_LABEL: "a" * 65})
    short = TagTemplate.parse("{tag}-{revision:.4}-{timestamp}", ["latest"])
    assert (
        short.render("latest", WHEN, DIGEST, {REVISION_LABEL: "v1"}) == "latest-v1-20261201093000"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prod-{revision:.3}-{timestamp}", "format spec ':.3' on {revision}"),
        ("prod-{revision:.65}-{timestamp}", "format spec ':.65' on {revision}"),
        ("prod-{revision:x}-{timestamp}", "format spec ':x' on {revision}"),
        ("prod-{created:%Y}-{timestamp}", "always the UTC creation time"),
        ("prod-{revision}-{revision}-{timestamp}", "appears more than once"),
        ("prod-{revision:.7}", "neither {timestamp} nor {digest}"),
        ("prod-{created}", "neither {timestamp} nor {digest}"),
        ("prod-{label}-{timestamp}", "{revision} or {revision:.N} (4 <= N <= 64), and {created}"),
    ],
)
def test_invalid_label_templates(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        TagTemplate.parse(text, ["latest"])


def test_missing_and_empty_labels() -> None:
    for labels in ({}, {REVISION_LABEL: ""}, {REVISION_LABEL: "   "}, {"other": SHA7}):
        with pytest.raises(LabelError) as info:
            HMCTS.render("latest", WHEN, DIGEST, labels)
        assert str(info.value) == "image has no org.opencontainers.image.revision label"
        assert info.value.label == REVISION_LABEL
    with pytest.raises(ValueError, match="pass the labels"):
        HMCTS.render("latest", WHEN, DIGEST)


SHA7 = "8ba37f7"


@pytest.mark.parametrize(
    ("value", "stamp"),
    [
        ("2026-12-01T09:30:00Z", "20261201093000"),
        ("2026-12-01T09:30:00.123456789Z", "20261201093000"),
        ("2026-12-01T10:30:00+01:00", "20261201093000"),
        ("2026-12-01t09:30:00z", "20261201093000"),
        ("2026-12-01 09:30:00Z", "20261201093000"),
    ],
)
def test_created_renders_utc_seconds(value: str, stamp: str) -> None:
    template = TagTemplate.parse("{tag}-{created}-{timestamp}", ["latest"])
    assert template.render("latest", WHEN, DIGEST, {CREATED_LABEL: value}) == (
        f"latest-{stamp}-20261201093000"
    )


@pytest.mark.parametrize(
    "value",
    ["yesterday", "2026-13-01T00:00:00Z", "2026-12-01T09:30:00", "1764581400", "2026-12-01"],
)
def test_bad_created_values_are_rejected(value: str) -> None:
    template = TagTemplate.parse("{tag}-{created}-{timestamp}", ["latest"])
    with pytest.raises(LabelError, match="is not an RFC 3339 time"):
        template.render("latest", WHEN, DIGEST, {CREATED_LABEL: value})


@given(st.text(max_size=150))
def test_any_revision_value_is_rejected_or_renders_a_recognised_valid_tag(value: str) -> None:
    """Whatever an image's label says: either a clear LabelError, or a valid tag that the
    template recognises as its own (so prune and reconcile treat it as generated) and whose
    revision part is exactly a prefix of the (lowercased hex) value."""
    try:
        tag = HMCTS.render("latest", WHEN, DIGEST, {REVISION_LABEL: value})
    except LabelError as exc:
        reason = str(exc)
        tag = None
    if tag is None:
        assert "org.opencontainers.image.revision" in reason
        assert "\n" not in reason
        return
    assert is_valid_tag(tag)
    match = HMCTS.generated_pattern.fullmatch(tag)
    assert match is not None
    stripped = value.strip()
    expected = stripped.lower() if re.fullmatch(r"[0-9A-Fa-f]+", stripped) else stripped
    assert match["revision"] == expected[:7]
    assert HMCTS.pushed_at_of(tag) == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def test_preview_shows_label_fields_and_is_never_a_tag() -> None:
    preview = HMCTS.preview("latest", WHEN, DIGEST)
    assert preview == "prod-<revision:.7>-20261201093000"
    assert not is_valid_tag(preview)
    assert not HMCTS.is_generated(preview)


def test_recognition_keeps_user_tags_out() -> None:
    """Prune (scope generated), reconcile and the event filter use `is_generated`: only tags the
    template can render count; a team's own tags of another shape never do."""
    for tag in ("prod-8ba37f7-20261201093000", "prod-v1.2-20261201093000"):
        assert HMCTS.is_generated(tag)
    for tag in ("latest", "prod-8ba37f7", "prod-8ba37f7-2026", "prod--20261201093000",
                "prod-8ba37f7c0-20261201093000", "staging-8ba37f7-20261201093000"):  # fmt: skip
        assert not HMCTS.is_generated(tag), tag


def test_push_time_truncates_like_the_rendered_stamp() -> None:
    assert HMCTS.push_time(WHEN) == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    millis = TagTemplate.parse("{tag}_{timestamp:ms}_{digest:.12}", ["latest"])
    assert millis.push_time(WHEN) == WHEN
    assert TagTemplate.parse("{tag}_{digest:.12}", ["latest"]).push_time(WHEN) is None
