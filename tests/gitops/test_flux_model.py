"""Table tests for the Flux ImagePolicy model (tests/gitops/flux.py) itself.

Expected values are facts of the controller and of Go, not of our code:
fluxcd/image-reflector-controller `internal/policy/filter.go` (unanchored
`FindStringSubmatchIndex`, `ExpandString`, map `extracted -> tag`: last one wins, issue #77),
`alphabetical.go` / `numerical.go` (order, `strconv.ParseFloat`, "failed to parse invalid numeric
value"), `factory.go` (order upper-cased); Go `regexp/syntax` (RE2: no lookaround, no
backreferences, no possessive quantifiers, repeat counts <= 1000); Go `strconv/atof_test.go`
(underscores between digits are accepted: `1_23.50_0_0e+1_2` parses, `123_.5e+12` does not).
"""

from __future__ import annotations

import re

import pytest

from tests.gitops.flux import (
    AmbiguousSelection,
    ImagePolicy,
    NotModelled,
    PolicyError,
    UnsupportedPattern,
    compile_re2,
    expand,
    parse_go_float,
)

D1 = "3f2a9c1b7d4e"
D2 = "a1b2c3d4e5f6"
DOCUMENTED = ImagePolicy.documented()


def test_the_documented_policy_is_read_from_docs_flux_md() -> None:
    assert DOCUMENTED.kind == "alphabetical"
    assert DOCUMENTED.order == "ASC"
    assert DOCUMENTED.pattern == r"^latest_(?P<ts>[0-9]{14}(?:[0-9]{3})?)_[a-f0-9]{12}$"
    assert DOCUMENTED.extract == "$ts"
    assert DOCUMENTED.exclusion_list == (r"^.*\.sig$", "^latest$")


@pytest.mark.parametrize(
    ("tags", "selected"),
    [
        ([f"latest_20261129230700123_{D1}"], f"latest_20261129230700123_{D1}"),
        (
            [f"latest_20261129230700123_{D1}", f"latest_20261129230700124_{D2}"],
            f"latest_20261129230700124_{D2}",
        ),
        # A 14-digit stamp (the old {timestamp}) sorts chronologically among 17-digit ones.
        (
            [f"latest_20261129230700999_{D1}", f"latest_20261129230701_{D2}"],
            f"latest_20261129230701_{D2}",
        ),
        (
            [f"latest_20261129230701_{D1}", f"latest_20261129230701001_{D2}"],
            f"latest_20261129230701001_{D2}",
        ),
        # Not generated tags of `latest`: ignored whatever they sort like.
        (
            [
                "latest",
                f"latest_20261129230700123_{D1}",
                f"stable_29991129230700123_{D2}",
                f"latest_2999112923070012_{D2}",
                f"latest_29991129230700123_{D2}.sig",
                "latest_29991129230700123_ABCDEF123456",
                f"xlatest_29991129230700123_{D2}",
            ],
            f"latest_20261129230700123_{D1}",
        ),
    ],
)
def test_documented_policy_selects_the_newest_generated_tag(tags: list[str], selected: str) -> None:
    assert DOCUMENTED.select(sorted(tags)) == selected
    assert DOCUMENTED.select(sorted(tags, reverse=True)) == selected


def test_no_generated_tag_fails_the_policy() -> None:
    with pytest.raises(PolicyError, match="version list argument cannot be empty"):
        DOCUMENTED.select(["latest", "v1"])


def test_equal_extracted_values_collapse_and_the_last_listed_tag_wins() -> None:
    """filter.go stores `filtered[extracted] = tag` in listing order (issue #77)."""
    first, second = f"latest_20261129230700_{D1}", f"latest_20261129230700_{D2}"
    assert DOCUMENTED.select([first, second]) == second
    assert DOCUMENTED.select([second, first]) == first
    # In the registry's lexical listing the digest part decides, not the push order.
    assert DOCUMENTED.select_digest({first: "sha256:old", second: "sha256:new"}) == (
        second,
        "sha256:new",
    )


def test_the_pattern_is_searched_not_anchored() -> None:
    policy = ImagePolicy(kind="alphabetical", pattern="[0-9]+", extract="")
    assert policy.select(["a-1", "b-2-x"]) == "b-2-x"
    assert ImagePolicy(kind="alphabetical", pattern="^v").select(["av9", "v1"]) == "v1"


def test_no_filter_orders_every_tag_and_exclusions_apply_first() -> None:
    policy = ImagePolicy(kind="alphabetical", exclusion_list=(r"^z",))
    assert policy.select(["a", "b", "zz"]) == "b"
    assert ImagePolicy(kind="alphabetical", order="DESC").select(["b", "a"]) == "a"


@pytest.mark.parametrize("order", ["up", "ascending"])
def test_an_unknown_order_is_refused(order: str) -> None:
    with pytest.raises(PolicyError, match="invalid order argument"):
        ImagePolicy.from_spec({"policy": {"alphabetical": {"order": order}}})


def test_order_is_case_insensitive_and_defaults_to_asc() -> None:
    assert ImagePolicy.from_spec({"policy": {"numerical": {"order": "desc"}}}).order == "DESC"
    assert ImagePolicy.from_spec({"policy": {"alphabetical": {}}}).order == "ASC"


# -- extract: Go's Regexp.ExpandString ---------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expanded"),
    [
        ("$ts", "20261129"),
        ("${ts}", "20261129"),
        ("$1", "20261129"),
        ("${1}x", "20261129x"),
        ("$1x", ""),  # `$1x` is the group named "1x": absent, so empty
        ("$0", "v20261129-rc"),
        ("$$ts", "$ts"),
        ("$tsx", ""),  # unknown name: empty
        ("v$ts-$suffix", "v20261129-rc"),
        ("$", "$"),  # malformed: literal
        ("${ts", "${ts"),  # missing brace: literal
        ("$-", "$-"),
        ("$01", ""),  # a leading zero makes it a name, not a number
        ("$opt", ""),  # a group that did not participate: empty
    ],
)
def test_extract_expands_like_go(template: str, expanded: str) -> None:
    pattern = compile_re2(r"^v(?P<ts>[0-9]+)-(?P<suffix>[a-z]+)(?P<opt>!)?$")
    match = pattern.search("v20261129-rc")
    assert match is not None
    assert expand(template, match) == expanded


# -- the pattern: Go RE2 ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    [
        r"^latest_(?=[0-9])",
        r"^latest_(?![a-z])",
        r"(?<=_)[0-9]+",
        r"(?<!x)[0-9]+",
        r"(a)\1",
        r"(?P<a>x)(?P=a)",
        r"(?P<a>x)\k<a>",
        r"a*+",
        r"a++",
        r"a?+",
        r"a{2}+",
        r"a**",
        r"(?>ab)",
        r"latest\Z",
        r"(?x) a",
        r"(?a)\w",
        r"a{1001}",
        r"a{1,1001}",
        r"(?#comment)a",
        r"(?(1)a|b)",
        r"\u0041",
        r"[a",
        r"*a",
    ],
)
def test_what_re2_lacks_is_rejected_with_a_clear_error(pattern: str) -> None:
    with pytest.raises(UnsupportedPattern, match=r"not supported by Go RE2|does not compile"):
        ImagePolicy(kind="alphabetical", pattern=pattern)


@pytest.mark.parametrize("pattern", [r"\pL", r"\p{Greek}", r"\Qa.b\E", "[[:alpha:]]", "(?U)a+"])
def test_valid_re2_the_model_does_not_translate_is_never_guessed(pattern: str) -> None:
    with pytest.raises(NotModelled):
        ImagePolicy(kind="alphabetical", pattern=pattern)


@pytest.mark.parametrize(
    ("pattern", "text", "found"),
    [
        (r"^(?<ts>[0-9]+)$", "123", "123"),  # Go 1.22 named group syntax
        (r"^[0-9]+\z", "123", "123"),
        (r"^a{,3}$", "a{,3}", "a{,3}"),  # RE2: `{,3}` is a literal; Python would repeat
        (r"^a+?$", "aaa", "aaa"),
        (r"^\d+$", "123", "123"),
        (r"(?i)^LATEST$", "latest", "latest"),
        (r"^[]a]+$", "]a", "]a"),
        (r"^a{2,}$", "aaa", "aaa"),
    ],
)
def test_re2_patterns_translate_to_the_same_matches(pattern: str, text: str, found: str) -> None:
    match = compile_re2(pattern).search(text)
    assert match is not None
    assert match.group(0) == found


def test_re2_classes_are_ascii() -> None:
    assert compile_re2(r"^\d+$").search("٣") is None  # ARABIC-INDIC DIGIT THREE
    assert compile_re2(r"^\w+$").search("é") is None


# -- numerical: strconv.ParseFloat --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1.0),
        ("-1.5", -1.5),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("0x1p4", 16.0),
        ("0x1.8p1", 3.0),
        ("1_000", 1000.0),
        ("1_23.50_0_0e+1_2", 1.235e14),
        ("inf", float("inf")),
        ("-Infinity", float("-inf")),
        ("20261129230700", 20261129230700.0),
    ],
)
def test_go_float_parsing(text: str, value: float) -> None:
    assert parse_go_float(text) == value


@pytest.mark.parametrize(
    "text",
    ["", " 1", "1 ", "_1", "1_", "1__0", "123_.5e+12", "0x10", "+NaN", "1e400", "abc", "1,5"],
)
def test_go_float_parse_errors(text: str) -> None:
    with pytest.raises(ValueError, match="failed to parse invalid numeric value"):
        parse_go_float(text)


def test_nan_parses() -> None:
    assert parse_go_float("NaN") != parse_go_float("nan")  # NaN != NaN


def test_one_non_numeric_value_fails_a_numerical_policy() -> None:
    policy = ImagePolicy(kind="numerical", pattern=r"^build-(?P<n>.*)$", extract="$n")
    assert policy.select(["build-1", "build-10", "build-9"]) == "build-10"
    with pytest.raises(PolicyError, match="failed to parse invalid numeric value 'x'"):
        policy.select(["build-1", "build-x"])


def test_numerical_is_exact_for_14_digit_stamps() -> None:
    """14-digit stamps are below 2^53: every one is an exact float64."""
    policy = ImagePolicy(kind="numerical", pattern=r"^latest_(?P<ts>[0-9]{14})_", extract="$ts")
    tags = [f"latest_2026112923070{s}_{D1}" for s in range(10)]
    assert 2**53 > 99991231235959
    assert policy.select(tags) == tags[-1]


def test_numerical_rounds_17_digit_stamps_above_2_to_the_53() -> None:
    """float64 has a 53-bit significand: between 2^54 and 2^55 it steps by 4, so stamps one or
    two milliseconds apart parse to the same float and Flux picks one at random (Go map order);
    the alphabetical policy docs/flux.md documents orders them exactly."""
    older, newer = f"latest_20261129230700121_{D1}", f"latest_20261129230700122_{D2}"
    assert 2**54 < 20261129230700121 < 2**55
    assert parse_go_float("20261129230700121") == parse_go_float("20261129230700122")
    assert parse_go_float("20261129230700121") == 20261129230700120.0
    numerical = ImagePolicy(kind="numerical", pattern=DOCUMENTED.pattern, extract="$ts")
    with pytest.raises(AmbiguousSelection) as raised:
        numerical.select([older, newer])
    assert raised.value.tags == (older, newer)
    assert DOCUMENTED.select([older, newer]) == newer
    # Far enough apart, numerical still orders them.
    assert numerical.select([older, f"latest_20261129230700130_{D2}"]).endswith(D2)


def test_the_model_refuses_input_no_oci_tag_can_be() -> None:
    with pytest.raises(NotModelled):
        DOCUMENTED.select(["latest_x\n"])
    assert re.fullmatch(r"[\w][\w.-]{0,127}", "latest_20261129230700123_" + D1)
