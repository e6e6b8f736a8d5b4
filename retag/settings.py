"""App settings: read once, validated once, with one clear error naming the setting.

The same settings drive the Function App, the CLI and the emulator demo. `SETTINGS` lists every
environment variable acr-retag reads, with its default and meaning (docs, the example settings
file and the infrastructure tests are generated from or checked against it).

Values are stripped of surrounding whitespace; an empty value means "not set" (the default).
Besides reading the environment, the only I/O here is checking that `ACR_CA_BUNDLE` is a readable
PEM certificate bundle.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal, TypeVar, cast

from retag.naming import TagTemplate
from retag.oci import tag_problem

Credential = Literal["default", "anonymous"]
PruneMode = Literal["off", "dry-run", "delete"]
PruneScope = Literal["generated", "all"]
ReconcileMode = Literal["off", "dry-run", "apply"]

_T = TypeVar("_T")

DEFAULT_AUDIENCE = "https://containerregistry.azure.net"
"""Microsoft Entra audience of ACR tokens in the public cloud (`ACR_AUDIENCE`'s default; the
adapter's too)."""


class SettingsError(ValueError):
    """One invalid setting. `str()` is "SETTING: what is wrong (the accepted form)"."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting
        self.message = message


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | None
    """The value used when the variable is unset or empty; None when the setting is required."""
    description: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "ACR_LOGIN_SERVER",
        None,
        "Registry login server, host[:port] without scheme, e.g. myregistry.azurecr.io (required).",
    ),
    Setting(
        "ACR_CREDENTIAL",
        "default",
        "default (DefaultAzureCredential; honours AZURE_CLIENT_ID for a user-assigned identity) "
        "or anonymous (emulator, public registries).",
    ),
    Setting(
        "ACR_AUDIENCE",
        DEFAULT_AUDIENCE,
        "Entra ID audience for registry tokens (sovereign clouds use their own).",
    ),
    Setting("ACR_CA_BUNDLE", "", "Optional PEM file of CA certificates (e.g. the emulator's)."),
    Setting(
        "RETAG_SOURCE_TAGS",
        "latest",
        "Comma-separated exact tags whose pushes get a generated tag.",
    ),
    Setting(
        "RETAG_TAG_TEMPLATE",
        "{tag}_{timestamp:ms}_{digest:.12}",
        "Generated tag: {tag}, {timestamp} (UTC YYYYMMDDHHMMSS) or {timestamp:ms} "
        "(YYYYMMDDHHMMSSmmm), {digest} or {digest:.N}, and the image labels {revision} or "
        "{revision:.N} (org.opencontainers.image.revision) and {created} "
        "(org.opencontainers.image.created), e.g. prod-{revision:.7}-{timestamp}.",
    ),
    Setting("RETAG_REPOSITORIES", "", "Regex (full match) of repositories to re-tag; empty: all."),
    Setting(
        "RETAG_EXCLUDE_REPOSITORIES",
        "",
        "Regex (full match) of repositories never to re-tag; empty: none.",
    ),
    Setting("PRUNE_SCHEDULE", "0 0 3 * * *", "NCRONTAB schedule of the prune_tags timer."),
    Setting(
        "PRUNE_MODE", "dry-run", "off, dry-run or delete (a fresh deployment deletes nothing)."
    ),
    Setting("PRUNE_KEEP", "10", "Newest candidate tags kept per repository (0 or more)."),
    Setting("PRUNE_MIN_AGE", "7d", "Candidates younger than this are kept (e.g. 30m, 12h, 7d)."),
    Setting(
        "PRUNE_SCOPE",
        "generated",
        "generated (only tags the template produces) or all (every tag except source tags).",
    ),
    Setting(
        "PRUNE_UNTAGGED",
        "false",
        "true or false: also delete untagged manifests (never children of an index, referrers or "
        "locked ones).",
    ),
    Setting(
        "PRUNE_REPOSITORIES",
        "",
        "Regex (full match) of repositories to prune; empty: the RETAG_REPOSITORIES and "
        "RETAG_EXCLUDE_REPOSITORIES filters.",
    ),
    Setting("PRUNE_CONCURRENCY", "8", "Parallel deletions (1 to 64)."),
    Setting(
        "PRUNE_MAX_DURATION",
        "8m",
        "Time box of one prune run (keep it below functionTimeout in host.json).",
    ),
    Setting(
        "RECONCILE_SCHEDULE", "0 */15 * * * *", "NCRONTAB schedule of the reconcile_tags timer."
    ),
    Setting(
        "RECONCILE_MODE",
        "apply",
        "off, dry-run or apply (it only ever adds generated tags).",
    ),
    Setting(
        "RECONCILE_GRACE",
        "15m",
        "Source tags updated more recently than this are left to the event path.",
    ),
    Setting(
        "FLUX_RECEIVER_URL",
        "",
        "Optional Flux notification-controller generic-hmac Receiver URL (https; http only on "
        "loopback): POSTed after every new generated tag so Flux reconciles at once.",
    ),
    Setting(
        "FLUX_RECEIVER_TOKEN",
        "",
        "The Receiver's token (HMAC-SHA256 key of X-Signature); required with FLUX_RECEIVER_URL. "
        "In Azure a Key Vault reference; never logged.",
    ),
    Setting(
        "RETAG_EVENTS_TOPIC",
        "",
        "Optional Event Grid topic endpoint (https://<topic>.<region>-1.eventgrid.azure.net/api/"
        "events): one AcrRetag.TagAdded CloudEvent per new generated tag (role EventGrid Data "
        "Sender).",
    ),
    Setting(
        "RETAG_SDK_LOG_LEVEL",
        "WARNING",
        "Level of the Azure SDK loggers (DEBUG, INFO, WARNING, ERROR); raise it only to debug: "
        "at INFO the SDK logs every request and response.",
    ),
)

_DEFAULTS = {s.name: s.default for s in SETTINGS}


# -- durations ---------------------------------------------------------------------------------

_DURATION_RE = re.compile(r"([0-9]{1,9})([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DURATION_FORM = "a whole number followed by s, m, h or d, e.g. 90s, 30m, 12h, 7d"


def parse_duration(text: str) -> timedelta:
    """`"90s"`, `"30m"`, `"12h"`, `"7d"` to a timedelta; ValueError otherwise."""
    match = _DURATION_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration; use {DURATION_FORM}")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def format_duration(duration: timedelta) -> str:
    """`timedelta(hours=1, minutes=30)` as `1h30m` (whole seconds; `0s`; negative with `-`)."""
    seconds = int(duration.total_seconds())
    if seconds < 0:
        return f"-{format_duration(-duration)}"
    if seconds == 0:
        return "0s"
    parts = []
    for unit in "dhms":
        size = _UNIT_SECONDS[unit]
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)


# -- NCRONTAB ----------------------------------------------------------------------------------

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("second", 0, 59, {}),
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day", 1, 31, {}),
    ("month", 1, 12, {name: i + 1 for i, name in enumerate(_MONTHS)}),
    ("day-of-week", 0, 6, {name: i for i, name in enumerate(_DAYS)}),
)
NCRONTAB_FORM = (
    "six fields 'second minute hour day month day-of-week', each *, a number, a range a-b, "
    "a list a,b, or a step */n or a-b/n; e.g. '0 */15 * * * *'"
)


def validate_ncrontab(text: str) -> str:
    """Check a six-field NCRONTAB expression as Azure Functions timers use; returns it."""
    fields = text.split()
    if len(fields) != 6:
        raise ValueError(f"{text!r} has {len(fields)} fields, not 6; use {NCRONTAB_FORM}")
    for value, (name, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for item in value.split(","):
            problem = _cron_item_problem(item, low, high, names)
            if problem:
                raise ValueError(
                    f"{text!r}: {name} field {value!r}: {problem}; use {NCRONTAB_FORM}"
                )
    return text.strip()


def _cron_item_problem(item: str, low: int, high: int, names: Mapping[str, int]) -> str | None:
    if item == "":
        return "empty list element"
    base, slash, step = item.partition("/")
    if slash:
        if not step.isdigit() or not step.isascii():
            return f"step {step!r} is not a number"
        if not 1 <= int(step) <= high - low + 1:
            return f"step {step} is out of range 1-{high - low + 1}"
    if base == "*":
        return None
    start, dash, end = base.partition("-")
    bounds: list[int] = []
    for part in (start, end) if dash else (start,):
        if part.isascii() and part.isdigit():
            number = int(part)
        elif part.lower() in names:
            number = names[part.lower()]
        else:
            return f"{part!r} is not a number" if part else "empty range bound"
        if not low <= number <= high:
            return f"{number} is out of range {low}-{high}"
        bounds.append(number)
    if dash and bounds[0] > bounds[1]:
        return f"range {base} runs backwards"
    return None


# -- settings objects --------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistrySettings:
    """Where the registry is and how to authenticate (`ACR_*`)."""

    login_server: str
    credential: Credential
    audience: str
    ca_bundle: str | None

    @property
    def endpoint(self) -> str:
        return "https://" + self.login_server


@dataclass(frozen=True)
class RetagSettings:
    """Which pushes get a generated tag, and its template (`RETAG_*`)."""

    source_tags: tuple[str, ...]
    template: TagTemplate
    repositories: re.Pattern[str] | None
    exclude_repositories: re.Pattern[str] | None

    def in_scope(self, repository: str) -> bool:
        """Included (full match, default all) and not excluded (full match, default none)."""
        if self.repositories is not None and self.repositories.fullmatch(repository) is None:
            return False
        return not (
            self.exclude_repositories is not None
            and self.exclude_repositories.fullmatch(repository) is not None
        )


@dataclass(frozen=True)
class PruneSettings:
    """The `prune_tags` timer and policy (`PRUNE_*`)."""

    schedule: str
    mode: PruneMode
    keep: int
    min_age: timedelta
    scope: PruneScope
    untagged: bool
    repositories: re.Pattern[str] | None
    concurrency: int
    max_duration: timedelta

    def in_scope(self, repository: str, retag: RetagSettings) -> bool:
        """PRUNE_REPOSITORIES (full match) when set; otherwise exactly the re-tag filters."""
        if self.repositories is None:
            return retag.in_scope(repository)
        return self.repositories.fullmatch(repository) is not None


@dataclass(frozen=True)
class ReconcileSettings:
    """The `reconcile_tags` timer (`RECONCILE_*`)."""

    schedule: str
    mode: ReconcileMode
    grace: timedelta


@dataclass(frozen=True)
class NotifySettings:
    """Who hears about a new generated tag (`FLUX_RECEIVER_*`, `RETAG_EVENTS_TOPIC`)."""

    flux_receiver_url: str | None = None
    flux_receiver_token: str | None = field(default=None, repr=False)
    """The HMAC key: never in a repr, a log line or an error message."""
    events_topic: str | None = None


@dataclass(frozen=True)
class Settings:
    """Every setting, validated (`load_settings`)."""

    registry: RegistrySettings
    retag: RetagSettings
    prune: PruneSettings
    reconcile: ReconcileSettings
    sdk_log_level: str = "WARNING"
    notify: NotifySettings = NotifySettings()


# -- validation --------------------------------------------------------------------------------

_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_LOGIN_SERVER_RE = re.compile(
    rf"(?P<host>{_HOST_LABEL}(?:\.{_HOST_LABEL})*)(?::(?P<port>[0-9]{{1,5}}))?"
)
LOGIN_SERVER_FORM = "host[:port] without scheme or path, e.g. myregistry.azurecr.io"


def parse_login_server(value: str) -> str:
    """`value` when it is a login server (`host[:port]`, lowercase, no scheme or path); else
    ValueError saying what is wrong. The one rule: `ACR_LOGIN_SERVER` and `AcrRegistry` use it."""
    if "://" in value:
        scheme, _, rest = value.partition("://")
        hint = rest.split("/")[0].lower()
        raise ValueError(
            f"{value!r} has a scheme; drop '{scheme}://' and give {LOGIN_SERVER_FORM} "
            f"(here: {hint!r})"
        )
    if "/" in value:
        raise ValueError(f"{value!r} has a path; use {LOGIN_SERVER_FORM}")
    if value != value.lower():
        raise ValueError(f"{value!r} must be lowercase: {value.lower()!r}")
    match = _LOGIN_SERVER_RE.fullmatch(value)
    if match is None or len(match["host"]) > 253:
        raise ValueError(f"{value!r} is not a valid login server; use {LOGIN_SERVER_FORM}")
    port = match["port"]
    if port is not None and not 1 <= int(port) <= 65535:
        raise ValueError(f"{value!r}: port {port} is out of range 1-65535")
    return value


def _credential(value: str) -> Credential:
    return cast(Credential, _choice(value, ("default", "anonymous")))


def _choice(value: str, choices: tuple[str, ...]) -> str:
    lowered = value.lower()
    if lowered not in choices:
        raise ValueError(f"{value!r} is not one of {' | '.join(choices)}")
    return lowered


def _audience(value: str) -> str:
    if re.fullmatch(r"https://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[^\s]*)?", value) is None:
        raise ValueError(
            f"{value!r} is not an https URL; use e.g. https://containerregistry.azure.net"
        )
    return value


def check_ca_bundle(path: str) -> str:
    """The absolute path of `path` when it is a readable PEM bundle of CA certificates (loaded
    the way TLS verification will load it); else ValueError in one line."""
    fix = "give the path of a PEM CA bundle, or leave it empty to use the system trust store"
    if not os.path.isfile(path):
        raise ValueError(f"{path!r} is not an existing file; {fix}")
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 20)
    except OSError as exc:
        raise ValueError(f"{path!r} is not readable ({exc.strerror or exc}); {fix}") from None
    if b"-----BEGIN CERTIFICATE-----" not in head:
        raise ValueError(f"{path!r} is not a PEM certificate bundle (no BEGIN CERTIFICATE); {fix}")
    try:
        ssl.create_default_context(cafile=path)
    except (ssl.SSLError, OSError, ValueError) as exc:
        reason = re.sub(r"\s*\(_ssl\.c:\d+\)", "", " ".join(str(exc).split()))
        raise ValueError(
            f"{path!r} is not a PEM certificate bundle (its certificates do not load: {reason}); "
            f"{fix}"
        ) from None
    return os.path.abspath(path)


def _ca_bundle(value: str) -> str | None:
    return None if value == "" else check_ca_bundle(value)


def _source_tags(value: str) -> tuple[str, ...]:
    tags = tuple(t.strip() for t in value.split(","))
    form = "comma-separated tags, e.g. latest,stable"
    for tag in tags:
        if tag == "":
            raise ValueError(f"{value!r} has an empty element; use {form}")
        problem = tag_problem(tag)
        if problem is not None:
            raise ValueError(f"tag {tag!r} {problem}; use {form}")
    for tag in tags:
        if tags.count(tag) > 1:
            raise ValueError(f"tag {tag!r} is listed more than once; use {form}")
    return tags


def _regex(value: str) -> re.Pattern[str] | None:
    if value == "":
        return None
    try:
        return re.compile(value)
    except re.error as exc:
        raise ValueError(
            f"{value!r} is not a valid regular expression ({exc}); give a Python regex that "
            "must match the whole repository name, e.g. 'team-a/.*'"
        ) from None


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
            raise ValueError(f"{value!r} is not a whole number from {low} to {high}")
        return int(value)

    return parse


def _bool(value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise ValueError(f"{value!r} is not true or false")
    return lowered == "true"


def _duration_in(low: timedelta, high: timedelta) -> Callable[[str], timedelta]:
    def parse(value: str) -> timedelta:
        duration = parse_duration(value)
        if not low <= duration <= high:
            raise ValueError(
                f"{value!r} is out of range {format_duration(low)} to {format_duration(high)}"
            )
        return duration

    return parse


class _Env:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def raw(self, name: str) -> str:
        value = self.env.get(name)
        value = value.strip() if isinstance(value, str) else ""
        if value:
            return value
        default = _DEFAULTS[name]
        if default is None:
            raise SettingsError(name, f"is required; set it to {LOGIN_SERVER_FORM}")
        return default

    def get(self, name: str, parse: Callable[[str], _T]) -> _T:
        value = self.raw(name)
        try:
            return parse(value)
        except ValueError as exc:
            raise SettingsError(name, str(exc)) from None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting (`env` defaults to os.environ); raises SettingsError."""
    read = _Env(os.environ if env is None else env)
    registry = RegistrySettings(
        login_server=read.get("ACR_LOGIN_SERVER", parse_login_server),
        credential=read.get("ACR_CREDENTIAL", _credential),
        audience=read.get("ACR_AUDIENCE", _audience),
        ca_bundle=read.get("ACR_CA_BUNDLE", _ca_bundle),
    )
    source_tags = read.get("RETAG_SOURCE_TAGS", _source_tags)
    retag = RetagSettings(
        source_tags=source_tags,
        template=read.get("RETAG_TAG_TEMPLATE", lambda v: _template(v, source_tags)),
        repositories=read.get("RETAG_REPOSITORIES", _regex),
        exclude_repositories=read.get("RETAG_EXCLUDE_REPOSITORIES", _regex),
    )
    prune = PruneSettings(
        schedule=read.get("PRUNE_SCHEDULE", validate_ncrontab),
        mode=cast(
            PruneMode, read.get("PRUNE_MODE", lambda v: _choice(v, ("off", "dry-run", "delete")))
        ),
        keep=read.get("PRUNE_KEEP", _int_in(0, 100_000)),
        min_age=read.get("PRUNE_MIN_AGE", _duration_in(timedelta(0), timedelta(days=3650))),
        scope=cast(PruneScope, read.get("PRUNE_SCOPE", lambda v: _choice(v, ("generated", "all")))),
        untagged=read.get("PRUNE_UNTAGGED", _bool),
        repositories=read.get("PRUNE_REPOSITORIES", _regex),
        concurrency=read.get("PRUNE_CONCURRENCY", _int_in(1, 64)),
        max_duration=read.get(
            "PRUNE_MAX_DURATION", _duration_in(timedelta(seconds=1), timedelta(days=1))
        ),
    )
    reconcile = ReconcileSettings(
        schedule=read.get("RECONCILE_SCHEDULE", validate_ncrontab),
        mode=cast(
            ReconcileMode,
            read.get("RECONCILE_MODE", lambda v: _choice(v, ("off", "dry-run", "apply"))),
        ),
        grace=read.get("RECONCILE_GRACE", _duration_in(timedelta(0), timedelta(days=30))),
    )
    sdk_log_level = read.get(
        "RETAG_SDK_LOG_LEVEL", lambda v: _choice(v, ("debug", "info", "warning", "error")).upper()
    )
    receiver_url = read.get("FLUX_RECEIVER_URL", lambda v: _optional_url(v, "FLUX_RECEIVER_URL"))
    receiver_token = read.get("FLUX_RECEIVER_TOKEN", _receiver_token)
    if receiver_url is not None and receiver_token is None:
        raise SettingsError(
            "FLUX_RECEIVER_TOKEN",
            "is required when FLUX_RECEIVER_URL is set (the Receiver's secret token, e.g. a Key "
            "Vault reference)",
        )
    if receiver_token is not None and receiver_url is None:
        raise SettingsError(
            "FLUX_RECEIVER_URL", "is required when FLUX_RECEIVER_TOKEN is set (the Receiver URL)"
        )
    notify = NotifySettings(
        flux_receiver_url=receiver_url,
        flux_receiver_token=receiver_token,
        events_topic=read.get(
            "RETAG_EVENTS_TOPIC", lambda v: _optional_url(v, "RETAG_EVENTS_TOPIC")
        ),
    )
    return Settings(
        registry=registry,
        retag=retag,
        prune=prune,
        reconcile=reconcile,
        sdk_log_level=sdk_log_level,
        notify=notify,
    )


def _receiver_token(value: str) -> str | None:
    """The Receiver token, checked without ever echoing it (it is a secret)."""
    if value == "":
        return None
    if not value.isascii() or not value.isprintable() or " " in value:
        raise ValueError("contains spaces or non-printable characters (value not shown)")
    if len(value) < 16:
        raise ValueError(
            f"is {len(value)} characters long; use at least 16 random characters, e.g. "
            "`openssl rand -hex 32` (value not shown)"
        )
    return value


_URL_RE = re.compile(
    r"(?P<scheme>https?)://(?P<host>[A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(?::(?P<port>[0-9]{1,5}))?"
    r"(?P<path>/[A-Za-z0-9._~%/+=-]*)?"
)
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def _optional_url(value: str, what: str) -> str | None:
    """None for empty; else an https URL (http only for a loopback host: a local receiver or the
    emulator), without credentials, query or fragment (tokens never travel in URLs)."""
    if value == "":
        return None
    form = "an https URL without user, query or fragment, e.g. https://host/path"
    match = _URL_RE.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not {form}")
    if match["scheme"] == "http" and match["host"].lower() not in _LOOPBACK_HOSTS:
        raise ValueError(f"{value!r} uses http; {what} must be https (http only on loopback)")
    port = match["port"]
    if port is not None and not 1 <= int(port) <= 65535:
        raise ValueError(f"{value!r}: port {port} is out of range 1-65535")
    return value


def _template(value: str, source_tags: tuple[str, ...]) -> TagTemplate:
    try:
        return TagTemplate.parse(value, source_tags)
    except ValueError as exc:
        raise ValueError(
            f"{exc} (accepted: a format string over {{tag}}, {{timestamp}} or {{timestamp:ms}}, "
            "{digest} or {digest:.N}, {revision} or {revision:.N}, and {created}, e.g. "
            "{tag}_{timestamp:ms}_{digest:.12} or prod-{revision:.7}-{timestamp})"
        ) from None
