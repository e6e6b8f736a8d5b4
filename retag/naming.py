"""Generated tag names: the `RETAG_TAG_TEMPLATE` language. Pure, no I/O.

A template is a Python format string over three fields and nothing else:

- `{tag}`: the source tag that was pushed (`latest`);
- `{timestamp}`: the push time in UTC as `YYYYMMDDHHMMSS` (14 digits, so tags sort by time);
- `{timestamp:ms}`: the same with milliseconds, `YYYYMMDDHHMMSSmmm` (17 digits), so two pushes in
  the same second still sort in push order (the default template uses it). Its tags are
  recognised in both widths, so 14-digit tags from before a switch are still ours to prune;
  under Flux's `alphabetical` order the two widths sort chronologically together (a 14-digit
  stamp compares like the same stamp with `000` appended);
- `{digest}`: the manifest digest as hex without `sha256:`; `{digest:.N}` keeps the first N
  characters (7 <= N <= 64).
- `{revision}`: the image's `org.opencontainers.image.revision` label (the git commit, as
  `docker build --label` / buildx / `LABEL` set it); `{revision:.N}` keeps the first N characters
  (4 <= N <= 64; without `.N` at most 64). A value must be hex (lowercased) or a safe tag fragment
  (`[A-Za-z0-9._-]`, starting with a letter or digit, at most 128 characters): anything else is
  rejected with a reason and never put into a tag;
- `{created}`: the image's `org.opencontainers.image.created` label (RFC 3339) in UTC as
  `YYYYMMDDHHMMSS`.

The label fields are read from the image config (for an index, of its first platform manifest:
`retag.oci.first_platform_manifest`); only templates that use them cost that read. A template
still needs `{timestamp}` (or `{digest}`): the push time orders tags for Flux, since a rollback
re-pushes an image whose labels (and creation time) are old.

`TagTemplate.parse` proves at start-up that every tag the template can render is a valid OCI tag
and can never equal a source tag, and derives `generated_pattern` (the full-match regex of every
tag it can produce) from the template itself: pruning and reconciliation recognise our tags with
it, and the event path uses it to explain why our own re-tag events are ignored.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from retag.oci import HEX_DIGEST_RE, tag_problem
from retag.registry import TagInfo

FIELDS = ("tag", "timestamp", "digest", "revision", "created")
REVISION_LABEL = "org.opencontainers.image.revision"
CREATED_LABEL = "org.opencontainers.image.created"
LABEL_FIELDS: dict[str, str] = {"revision": REVISION_LABEL, "created": CREATED_LABEL}
"""Template field -> the OCI image label (config `Labels`) it renders."""
REVISION_MIN_PRECISION = 4
REVISION_MAX_LENGTH = 64
"""Characters of a revision a tag holds at most (`{revision}` without `.N`)."""
DIGEST_MIN_PRECISION = 7
DIGEST_MAX_PRECISION = 64
UNIQUE_DIGEST_PRECISION = 12
"""With `{timestamp}` and at least this many digest characters, tags are unique in practice."""

_LITERAL_RE = re.compile(r"[A-Za-z0-9._-]*")
_PRECISION_RE = re.compile(r"\.([0-9]{1,2})")
_SAMPLE_TIME = datetime(2026, 11, 29, 23, 7, 0, tzinfo=UTC)
_SAMPLE_DIGEST = "sha256:" + "3f2a9c1b7d4e" + "0" * 52
_SAMPLE_LABELS = {REVISION_LABEL: "8ba37f7" + "c" * 33, CREATED_LABEL: "2026-11-29T23:00:00Z"}
_FORM = (
    "use only {tag}, {timestamp} or {timestamp:ms}, {digest} or {digest:.N} (7 <= N <= 64), "
    "{revision} or {revision:.N} (4 <= N <= 64), and {created}"
)
DEFAULT_TEMPLATE = "{tag}_{timestamp:ms}_{digest:.12}"
_TS_SECONDS = "[0-9]{14}"
_TS_EITHER = "[0-9]{14}(?:[0-9]{3})?"
_REVISION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_HEX_RE = re.compile(r"[0-9A-Fa-f]+")
_RFC3339_RE = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:\.[0-9]{1,9})?(?P<zone>[Zz]|[+-][0-9]{2}:[0-9]{2})"
)


class LabelError(ValueError):
    """An image label a template needs is missing or unusable: the push is skipped, nothing is
    written. `str()` is the one-line reason; `label` the OCI label name."""

    def __init__(self, label: str, reason: str) -> None:
        super().__init__(reason)
        self.label = label


def _shown(value: str) -> str:
    """A hostile label value, safe to quote in a reason: repr, at most 40 characters of it."""
    return repr(value[:40] + ("..." if len(value) > 40 else ""))


def revision_fragment(value: str) -> str:
    """The tag fragment of an `org.opencontainers.image.revision` value: hex is lowercased; a safe
    fragment is kept; anything else raises LabelError (never reaches a tag)."""
    if _HEX_RE.fullmatch(value):
        value = value.lower()
    if _REVISION_RE.fullmatch(value) is None:
        raise LabelError(
            REVISION_LABEL,
            f"label {REVISION_LABEL} value {_shown(value)} is not hex or a safe tag fragment "
            "(A-Z a-z 0-9 . _ -, starting with a letter or digit, at most 128 characters)",
        )
    return value


def created_stamp(value: str) -> str:
    """`YYYYMMDDHHMMSS` (UTC) of an `org.opencontainers.image.created` value (RFC 3339); anything
    else raises LabelError."""
    match = _RFC3339_RE.fullmatch(value)
    when: datetime | None = None
    if match is not None:
        zone = match["zone"].upper().replace("Z", "+00:00")
        try:
            when = datetime.fromisoformat(f"{match['date']}T{match['time']}{zone}")
        except ValueError:
            when = None
    if when is None:
        raise LabelError(
            CREATED_LABEL,
            f"label {CREATED_LABEL} value {_shown(value)} is not an RFC 3339 time "
            "(e.g. 2026-12-01T09:30:00Z)",
        )
    return _format_timestamp(when)


@dataclass(frozen=True)
class _Part:
    literal: str = ""
    field: str | None = None
    precision: int | None = None
    """Number of digest hex characters (64 when the field has no precision); for {timestamp},
    the number of sub-second digits (0, or 3 for `:ms`); for {revision}, the N of `:.N` (None:
    the whole value, at most 64 characters)."""


def _format_timestamp(timestamp: datetime, millis: bool = False) -> str:
    t = timestamp.astimezone(UTC)
    text = f"{t.year:04d}{t.month:02d}{t.day:02d}{t.hour:02d}{t.minute:02d}{t.second:02d}"
    return text + f"{t.microsecond // 1000:03d}" if millis else text


def parse_timestamp(text: str) -> datetime | None:
    """The UTC time a 14-digit (`YYYYMMDDHHMMSS`) or 17-digit (`...mmm`) stamp encodes, or None."""
    if len(text) not in (14, 17) or not text.isdigit():
        return None
    try:
        when = datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return when + timedelta(milliseconds=int(text[14:] or 0))


def _hex_digest(digest: str) -> str:
    hex_part = digest.removeprefix("sha256:")
    if HEX_DIGEST_RE.fullmatch(hex_part) is None:
        raise ValueError(f"digest {digest!r} is not 'sha256:' followed by 64 lowercase hex chars")
    return hex_part


def _re2_escape(literal: str) -> str:
    """Escape a tag literal (only [A-Za-z0-9._-]) for Python re and RE2 alike."""
    return literal.replace(".", r"\.")


def _parse_parts(text: str) -> tuple[_Part, ...]:
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"template {text!r} is not a valid format string: {exc}") from None
    parts: list[_Part] = []
    seen: set[str] = set()
    for literal, field_name, format_spec, conversion in parsed:
        if literal:
            if _LITERAL_RE.fullmatch(literal) is None:
                bad = next(c for c in literal if _LITERAL_RE.fullmatch(c) is None)
                raise ValueError(
                    f"template {text!r}: literal text {literal!r} contains {bad!r}, which is not "
                    "allowed in a tag (allowed: A-Z a-z 0-9 . _ -)"
                )
            parts.append(_Part(literal=literal))
        if field_name is None:
            continue
        if field_name == "" or field_name.isdigit():
            raise ValueError(
                f"template {text!r}: positional field {{{field_name}}} is not allowed; {_FORM}"
            )
        if "." in field_name or "[" in field_name:
            raise ValueError(
                f"template {text!r}: attribute or index access {{{field_name}}} is not allowed; "
                f"{_FORM}"
            )
        if field_name not in FIELDS:
            raise ValueError(f"template {text!r}: unknown field {{{field_name}}}; {_FORM}")
        if conversion is not None:
            raise ValueError(
                f"template {text!r}: conversion '!{conversion}' on {{{field_name}}} is not "
                f"allowed; {_FORM}"
            )
        if field_name in seen:
            raise ValueError(
                f"template {text!r}: {{{field_name}}} appears more than once; use each field "
                "at most once"
            )
        seen.add(field_name)
        precision: int | None = None
        if field_name == "digest":
            precision = DIGEST_MAX_PRECISION
            if format_spec:
                precision = _precision(
                    text, "digest", format_spec, DIGEST_MIN_PRECISION, DIGEST_MAX_PRECISION,
                    whole="{digest} (64 hex characters)",
                )  # fmt: skip
        elif field_name == "revision":
            if format_spec:
                precision = _precision(
                    text, "revision", format_spec, REVISION_MIN_PRECISION, REVISION_MAX_LENGTH,
                    whole=f"{{revision}} (at most {REVISION_MAX_LENGTH} characters)",
                )  # fmt: skip
        elif field_name == "timestamp":
            if format_spec not in ("", "ms"):
                raise ValueError(
                    f"template {text!r}: format spec ':{format_spec}' on {{timestamp}} is not "
                    "allowed; use {timestamp} (UTC YYYYMMDDHHMMSS) or {timestamp:ms} (with "
                    "milliseconds, YYYYMMDDHHMMSSmmm)"
                )
            precision = 3 if format_spec == "ms" else 0
        elif format_spec:
            what = (
                "it is always the source tag as pushed"
                if field_name == "tag"
                else "it is always the UTC creation time as YYYYMMDDHHMMSS"
            )
            raise ValueError(
                f"template {text!r}: format spec ':{format_spec}' on {{{field_name}}} is not "
                f"allowed ({what})"
            )
        parts.append(_Part(field=field_name, precision=precision))
    return tuple(parts)


def _precision(text: str, name: str, spec: str, low: int, high: int, *, whole: str) -> int:
    """N of a `:.N` format spec on {name}, low <= N <= high; else ValueError naming the forms."""
    match = _PRECISION_RE.fullmatch(spec)
    value = int(match.group(1)) if match else -1
    if not low <= value <= high:
        example = ", e.g. {revision:.7}" if name == "revision" else ""
        raise ValueError(
            f"template {text!r}: format spec ':{spec}' on {{{name}}} is not allowed; use "
            f"{whole} or {{{name}:.N}} with N from {low} to {high}{example}"
        )
    return value


@dataclass(frozen=True)
class TagTemplate:
    """A validated `RETAG_TAG_TEMPLATE` bound to its source tags. Build it with `parse`."""

    text: str
    source_tags: tuple[str, ...]
    parts: tuple[_Part, ...]
    generated_pattern: re.Pattern[str]
    """Full-match regex (anchored with \\A...\\Z) of every tag this template can render for the
    source tags. Named groups: `tag` (when the template has {tag}), `ts` (when it has
    {timestamp}) and `digest` (when it has {digest})."""

    @classmethod
    def parse(cls, text: str, source_tags: Sequence[str]) -> TagTemplate:
        """Validate `text` for `source_tags`; raises ValueError with a clear message."""
        if not isinstance(text, str):
            raise ValueError(f"template must be a string, got {type(text).__name__}")
        if isinstance(source_tags, str):
            raise ValueError("source tags must be a sequence of tags, not one string")
        tags = tuple(source_tags)
        if not tags:
            raise ValueError("at least one source tag is needed")
        for tag in tags:
            if not isinstance(tag, str):
                raise ValueError(f"source tag {tag!r} is not a string")
            problem = tag_problem(tag)
            if problem is not None:
                raise ValueError(f"source tag {tag!r} {problem}")
        duplicates = sorted({t for t in tags if tags.count(t) > 1})
        if duplicates:
            raise ValueError(f"source tag {duplicates[0]!r} is listed more than once")
        if text == "":
            raise ValueError(f"template is empty; {_FORM}")

        parts = _parse_parts(text)
        fields = {p.field for p in parts if p.field}
        if "timestamp" not in fields and "digest" not in fields:
            raise ValueError(
                f"template {text!r} has neither {{timestamp}} nor {{digest}}: every push would "
                "get the same tag; include {timestamp} (and {digest:.12} to make tags unique)"
            )

        pattern = re.compile(r"\A" + cls._pattern_body(parts, tags) + r"\Z")
        template = cls(text=text, source_tags=tags, parts=parts, generated_pattern=pattern)

        for tag in tags:
            sample = template.render(tag, _SAMPLE_TIME, _SAMPLE_DIGEST, _SAMPLE_LABELS)
            problem = tag_problem(sample)
            if problem is not None:
                raise ValueError(
                    f"template {text!r} renders {sample!r} for source tag {tag!r}, which is not "
                    f"a valid tag: it {problem}"
                )
            if not pattern.fullmatch(sample):  # pragma: no cover - guards our own regex
                raise AssertionError(f"generated_pattern does not match its own sample {sample!r}")
        for tag in tags:
            if pattern.fullmatch(tag):
                raise ValueError(
                    f"template {text!r} could render the source tag {tag!r} itself; add a "
                    "literal separator such as '_' so generated tags never equal a source tag"
                )
        return template

    @staticmethod
    def _pattern_body(parts: Sequence[_Part], tags: Sequence[str]) -> str:
        pieces: list[str] = []
        for part in parts:
            if part.field is None:
                pieces.append(_re2_escape(part.literal))
            elif part.field == "tag":
                # Longest first keeps the alternation readable; fullmatch backtracks anyway.
                ordered = sorted(tags, key=lambda t: (-len(t), t))
                alternation = "|".join(_re2_escape(t) for t in ordered)
                pieces.append(f"(?P<tag>{alternation})")
            elif part.field == "timestamp":
                pieces.append(f"(?P<ts>{_TS_EITHER if part.precision else _TS_SECONDS})")
            elif part.field == "digest":
                pieces.append(f"(?P<digest>[a-f0-9]{{{part.precision}}})")
            else:
                pieces.append(f"(?P<{part.field}>{_label_pattern(part)})")
        return "".join(pieces)

    # -- what the template guarantees -------------------------------------------------------

    @property
    def has_tag(self) -> bool:
        return any(p.field == "tag" for p in self.parts)

    @property
    def has_timestamp(self) -> bool:
        return any(p.field == "timestamp" for p in self.parts)

    @property
    def has_millis(self) -> bool:
        """True for `{timestamp:ms}`: tags of pushes in the same second still sort in order."""
        return any(p.field == "timestamp" and p.precision for p in self.parts)

    @property
    def has_digest(self) -> bool:
        return self.digest_length is not None

    @property
    def digest_length(self) -> int | None:
        """Digest hex characters in a generated tag (None without {digest})."""
        return next((p.precision for p in self.parts if p.field == "digest"), None)

    @property
    def label_names(self) -> tuple[str, ...]:
        """The OCI labels this template renders (empty: no image config read is needed)."""
        return tuple(LABEL_FIELDS[p.field] for p in self.parts if p.field in LABEL_FIELDS)

    @property
    def needs_existing_check(self) -> bool:
        """True when a rendered tag may already exist on ANOTHER digest.

        With {timestamp} and at least 12 digest hex characters (48 bits), a same-named tag on
        another digest needs a 48-bit digest-prefix collision pushed in the same second to the
        same repository: callers may skip the read-before-write then. Any weaker template (no
        timestamp, or a short or absent digest) can collide, so writers must look first and never
        overwrite.
        """
        length = self.digest_length
        return not (self.has_timestamp and length is not None and length >= UNIQUE_DIGEST_PRECISION)

    # -- rendering and recognising -----------------------------------------------------------

    def render(
        self,
        tag: str,
        timestamp: datetime,
        digest: str,
        labels: Mapping[str, str] | None = None,
    ) -> str:
        """The generated tag for a push of `digest` to source tag `tag` at `timestamp`.

        `digest` may be `sha256:<hex>` or the bare 64-character hex. `timestamp` must be
        timezone-aware; it is converted to UTC and truncated to the second (to the millisecond
        for `{timestamp:ms}`). `labels` (the image config's `Labels`) are needed when the
        template has `{revision}` or `{created}`: a missing or unusable one raises LabelError.
        """
        return self._render(tag, timestamp, digest, labels, preview=False)

    def preview(self, tag: str, timestamp: datetime, digest: str) -> str:
        """`render` for display before the labels are read: label fields show as
        `<revision:.7>` / `<created>` (not a valid tag; never written)."""
        return self._render(tag, timestamp, digest, None, preview=True)

    def push_time(self, timestamp: datetime) -> datetime | None:
        """The push time a tag rendered for `timestamp` encodes (UTC, truncated to the second, or
        the millisecond with `{timestamp:ms}`); None for a template without {timestamp}."""
        if not self.has_timestamp:
            return None
        if timestamp.tzinfo is None or timestamp.utcoffset() is None:
            raise ValueError("timestamp must be timezone-aware (UTC)")
        return parse_timestamp(_format_timestamp(timestamp, millis=self.has_millis))

    def _render(
        self,
        tag: str,
        timestamp: datetime,
        digest: str,
        labels: Mapping[str, str] | None,
        *,
        preview: bool,
    ) -> str:
        if tag not in self.source_tags:
            raise ValueError(
                f"{tag!r} is not a source tag (source tags: {', '.join(self.source_tags)})"
            )
        if timestamp.tzinfo is None or timestamp.utcoffset() is None:
            raise ValueError("timestamp must be timezone-aware (UTC)")
        hex_digest = _hex_digest(digest)
        out: list[str] = []
        for part in self.parts:
            if part.field is None:
                out.append(part.literal)
            elif part.field == "tag":
                out.append(tag)
            elif part.field == "timestamp":
                out.append(_format_timestamp(timestamp, millis=bool(part.precision)))
            elif part.field == "digest":
                out.append(hex_digest[: part.precision])
            elif preview:
                cut = "" if part.precision is None else f":.{part.precision}"
                out.append(f"<{part.field}{cut}>")
            else:
                out.append(_label_value(part, labels))
        return "".join(out)

    def is_generated(self, tag: str, source_tag: str | None = None) -> bool:
        """True when `tag` is a tag this template renders (for `source_tag`, when given).

        A template without {tag} renders the same shape for every source tag, so then any
        generated tag counts for any source tag.
        """
        match = self.generated_pattern.fullmatch(tag)
        if match is None:
            return False
        if source_tag is None or not self.has_tag:
            return True
        return match.group("tag") == source_tag

    def timestamp_of(self, tag: str) -> str | None:
        """The UTC timestamp digits inside a generated tag (14, or 17 with `:ms`), or None."""
        match = self.generated_pattern.fullmatch(tag)
        if match is None or not self.has_timestamp:
            return None
        return match.group("ts")

    def pushed_at_of(self, tag: str) -> datetime | None:
        """The push time a generated tag's name encodes (None without {timestamp})."""
        stamp = self.timestamp_of(tag)
        return None if stamp is None else parse_timestamp(stamp)

    def order_key(self, tag: str) -> tuple[datetime, str] | None:
        """How generated tags of one source tag sort, newest last: by the push time in the
        name, then by name (what Flux's alphabetical order on the stamp gives); None for a tag
        that is not generated or a template without {timestamp}."""
        when = self.pushed_at_of(tag)
        return None if when is None else (when, tag)

    def flux_pattern(self, source_tag: str) -> str:
        """The RE2 pattern for a Flux ImagePolicy `filterTags` (with `extract: '$ts'`).

        Example for the default template: `^latest_(?P<ts>[0-9]{14}(?:[0-9]{3})?)_[a-f0-9]{12}$`
        (17-digit stamps, and the 14-digit ones of `{timestamp}` from before a switch; use it with
        `alphabetical: asc`, which orders both widths chronologically).
        """
        if source_tag not in self.source_tags:
            raise ValueError(
                f"{source_tag!r} is not a source tag (source tags: {', '.join(self.source_tags)})"
            )
        if not self.has_timestamp:
            raise ValueError(
                f"template {self.text!r} has no {{timestamp}}: Flux cannot order its tags"
            )
        pieces: list[str] = []
        for part in self.parts:
            if part.field is None:
                pieces.append(_re2_escape(part.literal))
            elif part.field == "tag":
                pieces.append(_re2_escape(source_tag))
            elif part.field == "timestamp":
                pieces.append(f"(?P<ts>{_TS_EITHER if part.precision else _TS_SECONDS})")
            elif part.field == "digest":
                pieces.append(f"[a-f0-9]{{{part.precision}}}")
            else:
                pieces.append(_label_pattern(part))
        return "^" + "".join(pieces) + "$"


def _label_pattern(part: _Part) -> str:
    """RE2 (and Python re) of what a label field renders."""
    if part.field == "created":
        return _TS_SECONDS
    length = part.precision or REVISION_MAX_LENGTH
    return f"[A-Za-z0-9][A-Za-z0-9._-]{{0,{length - 1}}}"


def _label_value(part: _Part, labels: Mapping[str, str] | None) -> str:
    label = LABEL_FIELDS[part.field or ""]
    if labels is None:
        raise ValueError(f"the template renders the image label {label}: pass the labels")
    value = labels.get(label)
    if not isinstance(value, str) or value.strip() == "":
        raise LabelError(label, f"image has no {label} label")
    value = value.strip()
    if part.field == "created":
        return created_stamp(value)
    fragment = revision_fragment(value)
    length = part.precision or REVISION_MAX_LENGTH
    if part.precision is None and len(fragment) > REVISION_MAX_LENGTH:
        raise LabelError(
            label,
            f"label {label} value {_shown(value)} is {len(fragment)} characters long; "
            f"{{revision}} holds at most {REVISION_MAX_LENGTH} (use {{revision:.N}})",
        )
    return fragment[:length]


def newest_generated(
    template: TagTemplate, source_tag: str, tags: Iterable[TagInfo]
) -> TagInfo | None:
    """The generated tag of `source_tag` that Flux selects (the newest push time in its name,
    then the name; `lastUpdateTime` for a template without {timestamp}), or None."""
    best: TagInfo | None = None
    best_key: tuple[datetime, str] | None = None
    for tag in tags:
        if not template.is_generated(tag.name, source_tag):
            continue
        key = template.order_key(tag.name) or (tag.last_updated_on, tag.name)
        if best_key is None or key > best_key:
            best, best_key = tag, key
    return best
