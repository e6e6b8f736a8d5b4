"""A model of how Flux's image-reflector-controller picks the latest tag for an ImagePolicy.

It reads the ImagePolicy (and the ImageRepository's `exclusionList`) documented in docs/flux.md,
so the tests check the promise against the policy users copy, not against a private copy.

Semantics, verified against the controller's source (fluxcd/image-reflector-controller; facts
copied, not code):

- `internal/controller/imagepolicy_controller.go` `applyPolicy`: the tags come from the
  controller's database in the order the ImageRepository scan stored them
  (`internal/database/badger.go` stores the scanned list as given, after the ImageRepository's
  `exclusionList`); with `filterTags` they go through the regex filter, the policer picks one
  extracted value, and `GetOriginalTag` maps it back to the tag. No tag left: "version list
  argument cannot be empty" (the policy fails). The scan lists `/v2/<name>/tags/list`, which
  distribution and the emulator return in lexical order (assumed for ACR, not verified here):
  `select_digest` lists lexically, `select` takes any order.
- `internal/policy/filter.go` `RegexFilter`: `regexp.Compile(pattern)` (Go RE2; a compile error
  makes the policy invalid), `FindStringSubmatchIndex` (an unanchored search: a pattern without
  `^...$` matches substrings), `Regexp.ExpandString(extract)` when `extract` is not empty (else
  the tag itself), and the result is stored in a map `extracted -> tag`: **equal extracted values
  collapse, and the tag seen LAST in listing order wins** (fluxcd/image-reflector-controller
  issue #77, "Tell user if a duplicate extracted tag is seen", 2021-01-13: "the tag selected by
  the policy may depend on the order the original tags are encountered").
- `internal/policy/alphabetical.go`: Go string order (bytewise); `asc` selects the greatest
  value, `desc` the smallest; `internal/policy/factory.go` upper-cases `order`, empty means asc.
- `internal/policy/numerical.go`: `strconv.ParseFloat(value, 64)` for every value; one value that
  does not parse fails the whole policy ("failed to parse invalid numeric value"). Values are
  compared as float64: above 2^53 neighbouring integers round to the same float, so two tags
  whose 17-digit stamps differ by a millisecond can compare EQUAL; the loop runs over Go map
  keys (random order) and keeps the later of equal values, so the choice between them is
  random. The model raises `AmbiguousSelection` then instead of guessing.

Go RE2 is not Python `re`. The model compiles the pattern with `re` only after checking it uses
nothing RE2 lacks (lookahead/lookbehind, backreferences, possessive quantifiers, atomic groups,
conditionals, comments, `\\Z`, Python-only flags, repeat counts above 1000: `UnsupportedPattern`,
as Flux would reject the policy) and nothing the model does not translate (Unicode classes
`\\p{..}`, `\\Q..\\E`, POSIX classes, `(?U)`: `NotModelled`). `(?P<name>...)` and Go 1.22's
`(?<name>...)` are named groups; `\\z` is end of text. `\\d`, `\\w`, `\\s`, `\\b` are ASCII in RE2
(`re.ASCII`). `$` matches only at the end of the text in RE2 without `(?m)`; Python's `$` also
matches before a final newline, which no OCI tag contains (`select` refuses such input).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

DOC = Path(__file__).resolve().parents[2] / "docs" / "flux.md"
DOCUMENTED_POLICY = "myapp"
"""The name of the ImagePolicy users copy from docs/flux.md (section 2)."""
MAX_REPEAT = 1000
"""RE2's limit on `{n}` / `{n,m}` counts (Go regexp/syntax: "invalid repeat count")."""


class PolicyError(Exception):
    """The policy fails in Flux: no tag is selected (the ImagePolicy is not Ready)."""


class UnsupportedPattern(PolicyError, ValueError):
    """The pattern uses a construct Go RE2 does not have: Flux rejects the policy."""


class NotModelled(ValueError):
    """Valid RE2 that this model does not translate to Python `re` (never guessed)."""


class AmbiguousSelection(PolicyError):
    """Flux's choice depends on Go map iteration order (numerical ties between distinct values)."""

    def __init__(self, message: str, tags: Sequence[str]) -> None:
        super().__init__(message)
        self.tags = tuple(tags)


# -- RE2 -> Python re ---------------------------------------------------------------------------

_SIMPLE_ESCAPES = set("afntrvdDsSwWbBA")
_GROUP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FLAGS_RE = re.compile(r"\(\?([A-Za-z-]*)([:)])")
_REPEAT_RE = re.compile(r"\{(\d+)(?:(,)(\d*))?\}")
_PERL_ONLY = (
    ("=", "lookahead (?="),
    ("!", "negative lookahead (?!"),
    ("<=", "lookbehind (?<="),
    ("<!", "negative lookbehind (?<!"),
    (">", "atomic group (?>"),
    ("P=", "named backreference (?P="),
    ("P>", "recursion (?P>"),
    ("(", "conditional (?("),
    ("#", "comment (?#"),
    ("|", "branch reset (?|"),
    ("R", "recursion (?R"),
)


def translate_re2(pattern: str) -> str:
    """The Python `re` pattern (to compile with `re.ASCII`) matching what Go's `regexp.Compile`
    of `pattern` matches. Raises UnsupportedPattern or NotModelled (module docstring)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    state = "atom"  # "atom", "quantified" (after * + ? {n,m}) or "lazy" (after a lazy ?)

    def reject(what: str, at: int) -> UnsupportedPattern:
        return UnsupportedPattern(
            f"pattern {pattern!r}: {what} at offset {at} is not supported by Go RE2 "
            "(Flux would reject the ImagePolicy)"
        )

    def not_modelled(what: str, at: int) -> NotModelled:
        return NotModelled(f"pattern {pattern!r}: {what} at offset {at} is not modelled")

    def repetition(text: str, at: int) -> None:
        nonlocal state
        if state == "quantified" and text == "?":
            state = "lazy"
        elif state == "quantified" and text == "+":
            raise reject("possessive quantifier", at)
        elif state != "atom":
            raise reject("nested repetition", at)
        else:
            state = "quantified"
        out.append(text)

    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                raise reject("a trailing backslash", i)
            e = pattern[i + 1]
            state = "atom"
            if e in "123456789":
                raise reject(f"backreference (or octal escape) \\{e}", i)
            if e == "k":
                raise reject("named backreference \\k", i)
            if e == "Z":
                raise reject("\\Z (RE2 has \\z)", i)
            if e in "pPQEC" or pattern.startswith("\\x{", i):
                raise not_modelled(f"\\{e}", i)
            if e == "x":
                digits = pattern[i + 2 : i + 4]
                if len(digits) != 2 or any(d not in "0123456789abcdefABCDEF" for d in digits):
                    raise reject("a malformed \\x escape", i)
                out.append(pattern[i : i + 4])
                i += 4
                continue
            if e == "z":
                if in_class:
                    raise reject("\\z inside a character class", i)
                out.append(r"\Z")
            elif e in _SIMPLE_ESCAPES:
                if in_class and e in "bBA":
                    raise reject(f"\\{e} inside a character class", i)
                out.append("\\" + e)
            elif e.isascii() and not e.isalnum():
                out.append("\\" + e)  # escaped punctuation is a literal in both
            elif e == "0":
                raise not_modelled("octal escape \\0", i)
            else:
                raise reject(f"unknown escape \\{e}", i)
            i += 2
            continue
        if in_class:
            if c == "[" and pattern[i + 1 : i + 2] == ":":
                raise not_modelled("a POSIX class [:...:]", i)
            if c == "]":
                in_class = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class, state = True, "atom"
            out.append(c)
            i += 1
            if pattern[i : i + 1] == "^":
                out.append("^")
                i += 1
            if pattern[i : i + 1] == "]":  # a leading ] is a literal in both
                out.append(r"\]")
                i += 1
            continue
        if c == "(" and pattern[i + 1 : i + 2] == "?":
            rest = pattern[i + 2 :]
            for prefix, what in _PERL_ONLY:
                if rest.startswith(prefix):
                    raise reject(what, i)
            state = "atom"
            named = re.match(r"P?<([^>]*)>", rest)
            if named is not None:
                name = named.group(1)
                if re.fullmatch(r"[A-Za-z0-9_]+", name, re.ASCII) is None:
                    raise reject(f"invalid group name {name!r}", i)
                if _GROUP_NAME.fullmatch(name) is None:
                    raise not_modelled(f"group name {name!r} (valid in Go, not in Python)", i)
                out.append(f"(?P<{name}>")
                i += 2 + named.end()
                continue
            flags = _FLAGS_RE.match(pattern, i)
            if flags is None:
                raise reject("unknown (? syntax", i)
            letters, closer = flags.group(1), flags.group(2)
            for letter in letters.replace("-", ""):
                if letter == "U":
                    raise not_modelled("the ungreedy flag (?U)", i)
                if letter not in "ims":
                    raise reject(f"flag {letter!r}", i)
            if letters.count("-") > 1 or letters.endswith("-") or (closer == ")" and not letters):
                raise reject("malformed flags", i)
            if closer == ")" and "-" in letters:
                raise not_modelled("clearing flags for the rest of the pattern", i)
            out.append(flags.group(0))
            i = flags.end()
            continue
        if c in "*+?":
            repetition(c, i)
            i += 1
            continue
        if c == "{":
            repeat = _REPEAT_RE.match(pattern, i)
            if repeat is not None:
                low = int(repeat.group(1))
                high = int(repeat.group(3)) if repeat.group(3) else None
                if low > MAX_REPEAT or (high is not None and high > MAX_REPEAT):
                    raise reject(f"repeat count above {MAX_REPEAT}", i)
                if high is not None and high < low:
                    raise reject("repeat count max < min", i)
                repetition(repeat.group(0), i)
                i = repeat.end()
                continue
            out.append(r"\{")  # a brace that starts no repeat is a literal in both
            state = "atom"
            i += 1
            continue
        out.append(c)
        state = "atom"
        i += 1
    if in_class:
        raise reject("a missing closing ]", n)
    return "".join(out)


def compile_re2(pattern: str) -> re.Pattern[str]:
    translated = translate_re2(pattern)
    try:
        return re.compile(translated, re.ASCII)
    except re.error as error:
        raise UnsupportedPattern(f"pattern {pattern!r} does not compile: {error}") from None


# -- Go's Regexp.ExpandString -------------------------------------------------------------------


def _is_name_char(char: str) -> bool:
    return char == "_" or char.isalpha() or unicodedata.category(char) == "Nd"


def expand(template: str, match: re.Match[str]) -> str:
    """Go `Regexp.ExpandString(nil, template, src, match)`: `$name` / `${name}` (the longest run
    of letters, digits and `_`), `$1` numbered, `$$` a literal `$`; an unknown or unmatched group
    expands to nothing; a malformed `$` stays literal."""
    out: list[str] = []
    rest = template
    names = match.re.groupindex
    while True:
        before, dollar, rest = rest.partition("$")
        out.append(before)
        if not dollar:
            return "".join(out)
        if rest.startswith("$"):
            out.append("$")
            rest = rest[1:]
            continue
        brace = rest.startswith("{")
        body = rest[1:] if brace else rest
        length = 0
        while length < len(body) and _is_name_char(body[length]):
            length += 1
        if length == 0 or (brace and body[length : length + 1] != "}"):
            out.append("$")  # malformed: the $ is raw text
            continue
        name = body[:length]
        rest = body[length + 1 :] if brace else body[length:]
        group: int | None
        if name.isascii() and name.isdigit() and not (name[0] == "0" and len(name) > 1):
            group = int(name) if len(name) <= 8 else None
        else:
            group = names.get(name)
        if group is not None and group <= (match.re.groups or 0):
            value = match.group(group)
            if value is not None:
                out.append(value)


# -- Go's strconv.ParseFloat(s, 64) -----------------------------------------------------------

_DIGITS = r"[0-9](?:_?[0-9])*"
_HEX = r"[0-9a-fA-F](?:_?[0-9a-fA-F])*"
_GO_DECIMAL = re.compile(
    rf"[+-]?(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][+-]?{_DIGITS})?", re.ASCII
)
_GO_HEX = re.compile(
    rf"[+-]?0[xX]_?(?:{_HEX}(?:\.(?:{_HEX})?)?|\.{_HEX})[pP][+-]?{_DIGITS}", re.ASCII
)
_GO_INF = re.compile(r"[+-]?(?:inf|infinity)", re.IGNORECASE)


def parse_go_float(text: str) -> float:
    """Go `strconv.ParseFloat(text, 64)`; ValueError where Go returns an error (syntax, or a
    finite literal out of range). Rounding is IEEE nearest-even in both languages."""
    if _GO_INF.fullmatch(text):
        return -math.inf if text.startswith("-") else math.inf
    if text.lower() == "nan":
        return math.nan
    if _GO_DECIMAL.fullmatch(text):
        value = float(text.replace("_", ""))
    elif _GO_HEX.fullmatch(text):
        value = float.fromhex(text.replace("_", ""))
    else:
        raise ValueError(f"failed to parse invalid numeric value '{text}'")
    if math.isinf(value):
        raise ValueError(f"failed to parse invalid numeric value '{text}' (out of range)")
    return value


# -- the policy ---------------------------------------------------------------------------------

Kind = Literal["alphabetical", "numerical"]
Order = Literal["ASC", "DESC"]


@dataclass(frozen=True)
class ImagePolicy:
    """`spec.filterTags` + `spec.policy` of a Flux ImagePolicy (alphabetical or numerical), plus
    the ImageRepository's `exclusionList`."""

    kind: Kind
    order: Order = "ASC"
    pattern: str | None = None
    extract: str = ""
    exclusion_list: tuple[str, ...] = ()
    _compiled: re.Pattern[str] | None = field(default=None, repr=False, compare=False)
    _excluded: tuple[re.Pattern[str], ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.order not in ("ASC", "DESC"):
            raise PolicyError(
                f"invalid order argument provided: '{self.order}', must be one of: ASC, DESC"
            )
        compiled = compile_re2(self.pattern) if self.pattern is not None else None
        object.__setattr__(self, "_compiled", compiled)
        object.__setattr__(self, "_excluded", tuple(compile_re2(p) for p in self.exclusion_list))

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], exclusion_list: Iterable[str] = ()) -> ImagePolicy:
        """From an ImagePolicy `spec` (as YAML-decoded)."""
        choice = spec["policy"]
        kinds = [k for k in ("alphabetical", "numerical", "semver") if k in choice]
        if kinds != ["alphabetical"] and kinds != ["numerical"]:
            raise NotModelled(f"policy {choice!r}: only alphabetical or numerical is modelled")
        kind: Kind = "alphabetical" if kinds == ["alphabetical"] else "numerical"
        order = str((choice[kind] or {}).get("order", "") or "asc").upper()
        filter_tags = spec.get("filterTags")
        pattern = extract = None
        if filter_tags is not None:
            pattern = str(filter_tags.get("pattern", ""))
            extract = str(filter_tags.get("extract", ""))
        return cls(
            kind=kind,
            order=order,  # type: ignore[arg-type]  # validated in __post_init__
            pattern=pattern,
            extract=extract or "",
            exclusion_list=tuple(exclusion_list),
        )

    @classmethod
    def documented(cls, doc: Path = DOC, name: str = DOCUMENTED_POLICY) -> ImagePolicy:
        """The ImagePolicy `name` of docs/flux.md (by default the one of section 2; the page
        shows others, e.g. the worked example's), with its ImageRepository's `exclusionList`."""
        documents = yaml_documents(doc)
        (policy,) = [
            d for d in documents if d.get("kind") == "ImagePolicy" and d["metadata"]["name"] == name
        ]
        repositories = [d for d in documents if d.get("kind") == "ImageRepository"]
        name = policy["spec"]["imageRepositoryRef"]["name"]
        exclusion: list[str] = ["^.*\\.sig$"]  # the controller's default when none is given
        for repository in repositories:
            if repository["metadata"]["name"] == name and "exclusionList" in repository["spec"]:
                exclusion = list(repository["spec"]["exclusionList"])
        return cls.from_spec(policy["spec"], exclusion)

    def select(self, tags: Iterable[str]) -> str:
        """The tag Flux selects from `tags`, given in listing order. Raises PolicyError (the
        policy fails) or AmbiguousSelection."""
        listed = [t for t in tags if not any(x.search(t) for x in self._excluded)]
        if any("\n" in t for t in listed):
            raise NotModelled("tags with a newline (no OCI tag has one)")
        if self._compiled is None:
            filtered = {t: t for t in listed}
        else:
            filtered = {}
            for tag in listed:
                match = self._compiled.search(tag)
                if match is not None:
                    key = expand(self.extract, match) if self.extract else tag
                    filtered[key] = tag  # equal extracted values collapse: the last one wins
        if not filtered:
            raise PolicyError("version list argument cannot be empty")
        values = list(filtered)
        if self.kind == "alphabetical":
            latest = max(values) if self.order == "ASC" else min(values)
            return filtered[latest]
        parsed = {}
        for value in values:
            try:
                parsed[value] = parse_go_float(value)
            except ValueError as error:
                raise PolicyError(str(error)) from None
        if any(math.isnan(v) for v in parsed.values()) and len(parsed) > 1:
            raise AmbiguousSelection("NaN compares false: the result depends on map order", [])
        best = max(parsed.values()) if self.order == "ASC" else min(parsed.values())
        tied = sorted(filtered[v] for v, f in parsed.items() if f == best)
        if len(tied) > 1:
            raise AmbiguousSelection(
                f"{len(tied)} values parse to the same float64 {best!r}: Flux picks one at "
                "random (Go map iteration order)",
                tied,
            )
        return tied[0]

    def select_digest(self, tags: Mapping[str, str]) -> tuple[str, str]:
        """(selected tag, its digest) from a {tag: digest} map of a repository, listed in lexical
        order as the registry's tags/list returns them."""
        tag = self.select(sorted(tags))
        return tag, tags[tag]


def yaml_documents(doc: Path = DOC) -> list[dict[str, Any]]:
    """Every YAML document in the ```yaml blocks of `doc` (tests/cli/test_docs_flux.py uses it)."""
    import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs; types-PyYAML absent

    text = doc.read_text(encoding="utf-8")
    blocks = re.findall(r"^( *)```yaml\n(.*?)^\1```", text, flags=re.M | re.S)
    documents: list[dict[str, Any]] = []
    for indent, body in blocks:
        dedented = "\n".join(line[len(indent) :] for line in body.splitlines())
        documents.extend(d for d in yaml.safe_load_all(dedented) if d is not None)
    return documents
