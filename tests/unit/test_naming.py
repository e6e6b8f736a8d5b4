"""TagTemplate: parsing rules, rendering, the derived patterns, ordering."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retag.naming import TagTemplate
from retag.oci import is_valid_tag

DEFAULT = "{tag}_{timestamp}_{digest:.12}"
DIGEST = "sha256:3f2a9c1b7d4e" + "0123456789abcdef" * 3 + "0123"
WHEN = datetime(2026, 11, 29, 23, 7, 0, 654321, tzinfo=UTC)

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
tags = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(_ALNUM + "_"),
    st.text(alphabet=_ALNUM + "._-", max_size=40),
)
hex_digests = st.binary(min_size=32, max_size=32).map(lambda b: "sha256:" + b.hex())
times = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)


def test_default_template_renders_the_documented_shape() -> None:
    template = TagTemplate.parse(DEFAULT, ["latest"])
    assert template.render("latest", WHEN, DIGEST) == "latest_20261129230700_3f2a9c1b7d4e"
    assert template.text == DEFAULT
    assert template.source_tags == ("latest",)
    assert template.has_tag
    assert template.has_timestamp
    assert template.has_digest
    assert template.digest_length == 12
    assert template.needs_existing_check is False


def test_render_accepts_bare_hex_and_converts_offsets_to_utc() -> None:
    template = TagTemplate.parse(DEFAULT, ["latest"])
    plus_two = WHEN.astimezone(timezone(timedelta(hours=2)))
    assert template.render("latest", plus_two, DIGEST.removeprefix("sha256:")) == (
        "latest_20261129230700_3f2a9c1b7d4e"
    )


@pytest.mark.parametrize(
    ("tag", "when", "digest", "message"),
    [
        ("v1", WHEN, DIGEST, "'v1' is not a source tag"),
        ("latest", WHEN.replace(tzinfo=None), DIGEST, "timezone-aware"),
        ("latest", WHEN, "sha256:ABC", "64 lowercase hex"),
        ("latest", WHEN, "sha512:" + "0" * 64, "64 lowercase hex"),
        ("latest", WHEN, DIGEST.upper(), "64 lowercase hex"),
    ],
)
def test_render_rejects_bad_arguments(tag: str, when: datetime, digest: str, message: str) -> None:
    template = TagTemplate.parse(DEFAULT, ["latest"])
    with pytest.raises(ValueError, match=re.escape(message)):
        template.render(tag, when, digest)


@pytest.mark.parametrize(
    ("text", "rendered", "needs_check", "digest_length"),
    [
        ("{tag}_{timestamp}_{digest:.12}", "latest_20261129230700_3f2a9c1b7d4e", False, 12),
        ("{tag}-{timestamp}", "latest-20261129230700", True, None),
        ("{timestamp}", "20261129230700", True, None),
        ("{tag}.{digest:.7}", "latest.3f2a9c1", True, 7),
        ("{tag}_{digest}", "latest_" + DIGEST[7:], True, 64),
        ("build-{timestamp}-{digest:.16}", "build-20261129230700-3f2a9c1b7d4e0123", False, 16),
        ("{digest:.12}_{timestamp}", "3f2a9c1b7d4e_20261129230700", False, 12),
        ("{timestamp}_{digest:.11}", "20261129230700_3f2a9c1b7d4", True, 11),
        ("prod-{digest:.7}-{timestamp}", "prod-3f2a9c1-20261129230700", True, 7),
        ("_{tag}{timestamp}", "_latest20261129230700", True, None),
    ],
)
def test_valid_templates(
    text: str, rendered: str, needs_check: bool, digest_length: int | None
) -> None:
    template = TagTemplate.parse(text, ["latest"])
    sample = template.render("latest", WHEN, DIGEST)
    assert sample == rendered
    assert template.is_generated(sample)
    assert template.needs_existing_check is needs_check
    assert template.digest_length == digest_length


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "template is empty"),
        ("{}_{timestamp}", "positional field {}"),
        ("{0}_{timestamp}", "positional field {0}"),
        ("{tag.upper}_{timestamp}", "attribute or index access {tag.upper}"),
        ("{tag[0]}_{timestamp}", "attribute or index access {tag[0]}"),
        ("{tag!r}_{timestamp}", "conversion '!r' on {tag}"),
        ("{tag!s}_{timestamp}", "conversion '!s' on {tag}"),
        ("{branch}_{timestamp}", "unknown field {branch}"),
        ("{TAG}_{timestamp}", "unknown field {TAG}"),
        ("{tag}", "neither {timestamp} nor {digest}"),
        ("release", "neither {timestamp} nor {digest}"),
        ("{tag}_{digest:.6}", "format spec ':.6' on {digest}"),
        ("{tag}_{digest:.65}", "format spec ':.65' on {digest}"),
        ("{tag}_{digest:x}", "format spec ':x' on {digest}"),
        ("{tag}_{digest:>70}", "format spec ':>70' on {digest}"),
        ("{tag}_{digest:.{n}}", "format spec ':.{n}' on {digest}"),
        ("{tag}_{timestamp:%Y}", "format spec ':%Y' on {timestamp}"),
        ("{tag:>10}_{timestamp}", "format spec ':>10' on {tag}"),
        ("{tag}_{timestamp}_{timestamp}", "{timestamp} appears more than once"),
        ("{tag}_{digest:.7}_{digest:.12}", "{digest} appears more than once"),
        ("{tag", "not a valid format string"),
        ("{tag}}_{timestamp}", "not a valid format string"),
        ("{{tag}}_{timestamp}", "literal text '{' contains '{'"),
        ("{tag}/{timestamp}", "literal text '/' contains '/'"),
        ("{tag}:{timestamp}", "literal text ':' contains ':'"),
        ("{tag} {timestamp}", "literal text ' ' contains ' '"),
        ("{tag}_é{timestamp}", "contains 'é'"),
        ("-{timestamp}", "starts with '-'"),
        (".{tag}{timestamp}", "starts with '.'"),
        ("{tag}_" + "x" * 110 + "{timestamp}", "is 131 characters long"),
    ],
)
def test_invalid_templates_have_clear_messages(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        TagTemplate.parse(text, ["latest"])


def test_template_fitting_short_tags_is_rejected_for_a_long_source_tag() -> None:
    long_tag = "a" * 101  # 101 + len("_20261129230700_3f2a9c1b7d4e") = 129
    assert TagTemplate.parse("{tag}_{timestamp}", ["latest"])
    with pytest.raises(ValueError, match=re.escape(f"for source tag '{long_tag}'")):
        TagTemplate.parse("{tag}_{timestamp}_{digest:.12}", ["latest", long_tag])


@pytest.mark.parametrize(
    ("text", "source_tags", "message"),
    [
        ("{timestamp}", ["20261129230700"], "could render the source tag '20261129230700'"),
        ("{digest:.7}", ["latest", "abcdef0"], "could render the source tag 'abcdef0'"),
        ("{tag}{timestamp}", ["a", "a20990101000000"], "could render the source tag"),
        ("{tag}_{timestamp}", [], "at least one source tag"),
        ("{tag}_{timestamp}", ["latest", "latest"], "listed more than once"),
        ("{tag}_{timestamp}", ["-bad"], "source tag '-bad' starts with '-'"),
        ("{tag}_{timestamp}", [""], "source tag '' is empty"),
        ("{tag}_{timestamp}", "latest", "not one string"),
    ],
)
def test_templates_that_could_collide_with_a_source_tag(
    text: str, source_tags: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        TagTemplate.parse(text, source_tags)


def test_generated_pattern_is_derived_from_the_template() -> None:
    template = TagTemplate.parse("v.{tag}-{timestamp}_{digest:.8}", ["latest", "stable.1"])
    pattern = template.generated_pattern
    assert pattern.pattern == (
        r"\Av\.(?P<tag>stable\.1|latest)-(?P<ts>[0-9]{14})_(?P<digest>[a-f0-9]{8})\Z"
    )
    assert pattern.fullmatch("v.latest-20261129230700_3f2a9c1b")
    assert pattern.fullmatch("v.stable.1-20261129230700_3f2a9c1b")
    for other in [
        "latest",
        "v.latest-2026112923070_3f2a9c1b",  # 13 digits
        "v.latest-20261129230700_3f2a9c1",  # short digest
        "v.latest-20261129230700_3F2A9C1B",  # uppercase hex
        "vXlatest-20261129230700_3f2a9c1b",  # '.' is literal, not "any"
        "v.stableX1-20261129230700_3f2a9c1b",
        "v.other-20261129230700_3f2a9c1b",
        "v.latest-20261129230700_3f2a9c1b\n",
    ]:
        assert not template.is_generated(other), other
    # Anchored: search and match behave as a full match.
    assert pattern.search("x" + "v.latest-20261129230700_3f2a9c1b") is None


def test_is_generated_for_one_source_tag() -> None:
    template = TagTemplate.parse(DEFAULT, ["latest", "stable"])
    tag = template.render("stable", WHEN, DIGEST)
    assert template.is_generated(tag)
    assert template.is_generated(tag, "stable")
    assert not template.is_generated(tag, "latest")
    # Without {tag}, a generated tag counts for every source tag.
    shared = TagTemplate.parse("build-{timestamp}", ["latest", "stable"])
    assert shared.is_generated("build-20261129230700", "latest")
    assert shared.is_generated("build-20261129230700", "stable")


def test_timestamp_of() -> None:
    template = TagTemplate.parse(DEFAULT, ["latest"])
    assert template.timestamp_of("latest_20261129230700_3f2a9c1b7d4e") == "20261129230700"
    assert template.timestamp_of("latest") is None
    assert template.timestamp_of("v1_20261129230700_3f2a9c1b7d4e") is None
    digest_only = TagTemplate.parse("{tag}-{digest:.12}", ["latest"])
    assert digest_only.timestamp_of("latest-3f2a9c1b7d4e") is None


@pytest.mark.parametrize(
    ("text", "source_tag", "expected"),
    [
        (DEFAULT, "latest", "^latest_(?P<ts>[0-9]{14})_[a-f0-9]{12}$"),
        ("{tag}-{timestamp}", "stable.1", r"^stable\.1-(?P<ts>[0-9]{14})$"),
        ("prod-{digest:.7}-{timestamp}", "latest", "^prod-[a-f0-9]{7}-(?P<ts>[0-9]{14})$"),
    ],
)
def test_flux_pattern(text: str, source_tag: str, expected: str) -> None:
    template = TagTemplate.parse(text, ["latest", "stable.1"])
    pattern = template.flux_pattern(source_tag)
    assert pattern == expected
    # RE2 and Python agree on this subset; check it selects exactly the rendered tags.
    rendered = template.render(source_tag, WHEN, DIGEST)
    match = re.fullmatch(pattern, rendered)
    assert match is not None
    assert match.group("ts") == "20261129230700"


def test_flux_pattern_needs_a_timestamp_and_a_source_tag() -> None:
    template = TagTemplate.parse("{tag}-{digest:.12}", ["latest"])
    with pytest.raises(ValueError, match="Flux cannot order"):
        template.flux_pattern("latest")
    with pytest.raises(ValueError, match="not a source tag"):
        TagTemplate.parse(DEFAULT, ["latest"]).flux_pattern("v1")


@settings(max_examples=150, deadline=None)
@given(
    text=st.sampled_from(
        [
            DEFAULT,
            "{tag}-{timestamp}",
            "{tag}.{digest:.7}",
            "{timestamp}_{tag}_{digest}",
            "r{digest:.20}",
        ]
    ),
    source_tags=st.lists(tags, min_size=1, max_size=4, unique=True),
    when=times,
    digest=hex_digests,
    data=st.data(),
)
def test_every_render_is_a_valid_generated_tag(
    text: str,
    source_tags: list[str],
    when: datetime,
    digest: str,
    data: st.DataObject,
) -> None:
    try:
        template = TagTemplate.parse(text, source_tags)
    except ValueError:
        return  # e.g. a source tag that the template could render: rejected at parse time
    tag = data.draw(st.sampled_from(source_tags))
    rendered = template.render(tag, when, digest)
    assert is_valid_tag(rendered)
    assert rendered not in source_tags
    assert template.is_generated(rendered)
    assert template.is_generated(rendered, tag)
    if template.has_timestamp:
        assert template.timestamp_of(rendered) == when.strftime("%Y%m%d%H%M%S").zfill(14)


@settings(max_examples=150, deadline=None)
@given(
    first=times,
    second=times,
    digest_a=hex_digests,
    digest_b=hex_digests,
    source=tags,
)
def test_tags_sort_like_their_timestamps(
    first: datetime, second: datetime, digest_a: str, digest_b: str, source: str
) -> None:
    template = TagTemplate.parse(DEFAULT, [source])
    a = template.render(source, first, digest_a)
    b = template.render(source, second, digest_b)
    seconds_a, seconds_b = first.replace(microsecond=0), second.replace(microsecond=0)
    if seconds_a < seconds_b:
        assert a < b
    elif seconds_a > seconds_b:
        assert a > b
    else:
        assert (a == b) == (digest_a[7:19] == digest_b[7:19])


def test_millisecond_stamps_sort_pushes_of_one_second_and_recognise_old_tags() -> None:
    from retag.naming import DEFAULT_TEMPLATE

    template = TagTemplate.parse(DEFAULT_TEMPLATE, ["latest"])
    digest = "sha256:" + "3f2a9c1b7d4e" + "0" * 52
    first = template.render("latest", datetime(2026, 11, 29, 23, 7, 0, 5000, tzinfo=UTC), digest)
    second = template.render("latest", datetime(2026, 11, 29, 23, 7, 0, 998000, tzinfo=UTC), digest)
    assert (first, second) == (
        "latest_20261129230700005_3f2a9c1b7d4e",
        "latest_20261129230700998_3f2a9c1b7d4e",
    )
    old = "latest_20261129230700_3f2a9c1b7d4e"  # from the seconds-only default
    assert template.is_generated(old, "latest")
    assert template.pushed_at_of(old) == datetime(2026, 11, 29, 23, 7, tzinfo=UTC)
    assert template.pushed_at_of(second) == datetime(2026, 11, 29, 23, 7, 0, 998000, tzinfo=UTC)
    # Alphabetical on the extracted stamp (the documented policy) is chronological across widths.
    stamps = [template.timestamp_of(t) or "" for t in (second, old, first)]
    assert sorted(stamps) == [template.timestamp_of(t) for t in (old, first, second)]
    with pytest.raises(ValueError, match=r"\{timestamp:ms\}"):
        TagTemplate.parse("{tag}_{timestamp:us}", ["latest"])
