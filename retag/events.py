"""ACR events from Event Grid, as typed values. Pure, no I/O.

`parse_event` accepts one raw event in either delivery schema:

- Event Grid schema: `id, topic, subject, eventType, eventTime, dataVersion, metadataVersion, data`;
- CloudEvents 1.0: `id, source, subject, type, time, specversion, data` (detected by `specversion`).

`Microsoft.ContainerRegistry.ImagePushed` becomes `ImagePushed`, fully validated (digest,
repository and tag grammars, timestamps, types); every other event type (ImageDeleted,
ChartPushed, subscription validation, ...) becomes `OtherEvent` after its envelope is checked.
Anything else raises `MalformedEvent` with a precise reason. Unknown extra fields are ignored
(dead-lettered events carry `deadLetterReason`, `deliveryAttempts`, ...).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from retag.oci import digest_problem, repository_problem, tag_problem

IMAGE_PUSHED = "Microsoft.ContainerRegistry.ImagePushed"
EVENT_ID_MAX_LENGTH = 512
_TEXT_MAX_LENGTH = 4096
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_TIME_RE = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]{1,9}))?(?P<zone>[Zz]|[+-][0-9]{2}:[0-9]{2})"
)


class MalformedEvent(ValueError):
    """The event cannot be trusted; `reason` says exactly why. Nothing may be written for it."""

    def __init__(self, reason: str, event_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id


@dataclass(frozen=True)
class ImagePushed:
    """A validated `Microsoft.ContainerRegistry.ImagePushed`."""

    event_id: str
    repository: str
    tag: str | None
    """None when pushed by digest (e.g. a platform manifest of a multi-arch push)."""
    digest: str
    media_type: str | None
    pushed_at: datetime
    """UTC: `data.timestamp`, else the envelope's event time."""
    request_host: str | None
    """`data.request.host`: the login server the push went to."""
    actor: str | None = None
    """`data.actor.name`: who pushed (a user, a service principal's id; absent for some
    tokens). Control characters make the event malformed."""


@dataclass(frozen=True)
class OtherEvent:
    """Any other event type (ImageDeleted, ChartPushed, ...): valid envelope, not ours to act on."""

    event_id: str
    event_type: str


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _shown(value: str, limit: int = 80) -> str:
    """A short, log-safe rendering of untrusted text for error messages."""
    text = value if len(value) <= limit else value[:limit] + "..."
    return json.dumps(text)


class _Reader:
    """Typed access to an untrusted JSON object, raising MalformedEvent with the field path."""

    def __init__(self, event_id: str | None) -> None:
        self.event_id = event_id

    def fail(self, reason: str) -> MalformedEvent:
        return MalformedEvent(reason, self.event_id)

    def obj(self, container: Mapping[str, object], key: str, path: str) -> Mapping[str, object]:
        if key not in container or container[key] is None:
            raise self.fail(f"missing {path}")
        value = container[key]
        if not isinstance(value, Mapping):
            raise self.fail(f"{path} is {_json_type(value)}, expected an object")
        return value

    def optional_object(
        self, container: Mapping[str, object], key: str, path: str
    ) -> Mapping[str, object] | None:
        if container.get(key) is None:
            return None
        return self.obj(container, key, path)

    def string(self, container: Mapping[str, object], key: str, path: str) -> str:
        if key not in container or container[key] is None:
            raise self.fail(f"missing {path}")
        value = container[key]
        if not isinstance(value, str):
            raise self.fail(f"{path} is {_json_type(value)}, expected a string")
        if len(value) > _TEXT_MAX_LENGTH:
            raise self.fail(f"{path} is {len(value)} characters long (at most {_TEXT_MAX_LENGTH})")
        return value

    def optional_string(self, container: Mapping[str, object], key: str, path: str) -> str | None:
        if container.get(key) is None:
            return None
        return self.string(container, key, path)

    def optional_size(self, container: Mapping[str, object], key: str, path: str) -> None:
        value = container.get(key)
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{path} is {_json_type(value)}, expected a non-negative integer")
        if value < 0:
            raise self.fail(f"{path} is negative ({value})")

    def optional_time(
        self, container: Mapping[str, object], key: str, path: str
    ) -> datetime | None:
        """A date-time string; an aware `datetime` is accepted too (the Functions host decodes
        `eventTime`/`time` into one before our code sees the event)."""
        value = container.get(key)
        if value is None:
            return None
        if isinstance(value, datetime):
            if value.tzinfo is None or value.utcoffset() is None:
                raise self.fail(f"{path} has no UTC offset")
            return value.astimezone(UTC)
        return self.time(self.string(container, key, path), path)

    def time(self, text: str, path: str) -> datetime:
        match = _TIME_RE.fullmatch(text)
        if match is None:
            raise self.fail(
                f"{path} {_shown(text)} is not an ISO-8601 date-time with a UTC offset "
                "(e.g. 2026-11-29T23:07:00.1234567Z)"
            )
        zone = match["zone"]
        if zone in ("Z", "z"):
            tz = UTC
        else:
            hours, minutes = int(zone[1:3]), int(zone[4:6])
            if hours > 23 or minutes > 59:
                raise self.fail(f"{path} {_shown(text)} has an invalid UTC offset")
            sign = 1 if zone[0] == "+" else -1
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        micros = int((match["fraction"] or "0").ljust(6, "0")[:6])
        try:
            parsed = datetime.fromisoformat(f"{match['date']}T{match['time']}")
            return parsed.replace(microsecond=micros, tzinfo=tz).astimezone(UTC)
        except (ValueError, OverflowError):
            raise self.fail(f"{path} {_shown(text)} is not a valid date-time") from None


def _event_id(envelope: Mapping[str, object]) -> str:
    if "id" not in envelope or envelope["id"] is None:
        raise MalformedEvent("missing id")
    value = envelope["id"]
    if not isinstance(value, str):
        raise MalformedEvent(f"id is {_json_type(value)}, expected a string")
    if value.strip() == "":
        raise MalformedEvent("id is empty")
    if len(value) > EVENT_ID_MAX_LENGTH:
        raise MalformedEvent(f"id is {len(value)} characters long (at most {EVENT_ID_MAX_LENGTH})")
    if _CONTROL_RE.search(value):
        raise MalformedEvent("id contains control characters")
    return value


def parse_event(envelope: Mapping[str, object]) -> ImagePushed | OtherEvent:
    """Parse one raw event (Event Grid schema or CloudEvents 1.0); raises MalformedEvent."""
    if not isinstance(envelope, Mapping):
        raise MalformedEvent(f"event is {_json_type(envelope)}, expected a JSON object")
    if not all(isinstance(key, str) for key in envelope):
        raise MalformedEvent("event has non-string keys")
    event_id = _event_id(envelope)
    read = _Reader(event_id)

    if "specversion" in envelope:
        specversion = read.string(envelope, "specversion", "specversion")
        if specversion != "1.0":
            raise read.fail(f"specversion {_shown(specversion)} is not supported (expected 1.0)")
        type_key, time_key, source_key = "type", "time", "source"
        read.string(envelope, "source", "source")
    elif "eventType" in envelope:
        type_key, time_key, source_key = "eventType", "eventTime", "topic"
    else:
        raise read.fail(
            "neither an Event Grid event (no eventType) nor a CloudEvent (no specversion)"
        )

    event_type = read.string(envelope, type_key, type_key)
    if event_type.strip() == "":
        raise read.fail(f"{type_key} is empty")
    for key in ("subject", source_key, "dataVersion", "metadataVersion"):
        read.optional_string(envelope, key, key)
    event_time = read.optional_time(envelope, time_key, time_key)

    if event_type != IMAGE_PUSHED:
        if _CONTROL_RE.search(event_type):
            raise read.fail(f"{type_key} contains control characters")
        return OtherEvent(event_id=event_id, event_type=event_type)

    data = read.obj(envelope, "data", "data")
    target = read.obj(data, "target", "data.target")

    digest = read.string(target, "digest", "data.target.digest")
    problem = digest_problem(digest)
    if problem is not None:
        raise read.fail(f"data.target.digest {_shown(digest)} {problem}")

    repository = read.string(target, "repository", "data.target.repository")
    problem = repository_problem(repository)
    if problem is not None:
        raise read.fail(f"data.target.repository {_shown(repository)} {problem}")

    tag = read.optional_string(target, "tag", "data.target.tag")
    if tag is not None:
        problem = tag_problem(tag)
        if problem is not None:
            raise read.fail(f"data.target.tag {_shown(tag)} {problem}")

    media_type = read.optional_string(target, "mediaType", "data.target.mediaType")
    if media_type is not None and (media_type.strip() == "" or _CONTROL_RE.search(media_type)):
        raise read.fail(f"data.target.mediaType {_shown(media_type)} is not a media type")
    read.optional_size(target, "size", "data.target.size")
    read.optional_size(target, "length", "data.target.length")
    read.optional_string(target, "url", "data.target.url")
    for key in ("id", "action", "location"):
        read.optional_string(data, key, f"data.{key}")
    actor: str | None = None
    actor_section = read.optional_object(data, "actor", "data.actor")
    if actor_section is not None:
        actor = read.optional_string(actor_section, "name", "data.actor.name")
        if actor is not None and _CONTROL_RE.search(actor):
            raise read.fail(f"data.actor.name {_shown(actor)} contains control characters")
        actor = actor or None
    for section, fields in (
        ("source", ("addr", "instanceID")),
        ("connectedRegistry", ("name",)),
    ):
        obj = read.optional_object(data, section, f"data.{section}")
        if obj is not None:
            for key in fields:
                read.optional_string(obj, key, f"data.{section}.{key}")

    request_host: str | None = None
    request = read.optional_object(data, "request", "data.request")
    if request is not None:
        for key in ("id", "addr", "method", "useragent"):
            read.optional_string(request, key, f"data.request.{key}")
        request_host = read.optional_string(request, "host", "data.request.host")
        if request_host is not None and (
            request_host.strip() == "" or re.search(r"[\s\x00-\x1f\x7f/@]", request_host)
        ):
            raise read.fail(f"data.request.host {_shown(request_host)} is not a host[:port]")

    pushed_at = read.optional_time(data, "timestamp", "data.timestamp") or event_time
    if pushed_at is None:
        raise read.fail(f"no push time: neither data.timestamp nor {time_key}")

    return ImagePushed(
        event_id=event_id,
        repository=repository,
        tag=tag,
        digest=digest,
        media_type=media_type,
        pushed_at=pushed_at,
        request_host=request_host,
        actor=actor,
    )


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def parse_payload(body: bytes | str) -> list[Mapping[str, object]]:
    """Raw JSON (one event object or an array of them, as Event Grid posts and dead-letters) to
    a list of event objects; raises MalformedEvent("unparsable JSON: ...")."""
    if isinstance(body, bytes | bytearray):
        try:
            text = bytes(body).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise MalformedEvent(f"unparsable JSON: not UTF-8 ({exc.reason})") from None
    elif isinstance(body, str):
        text = body
    else:
        raise MalformedEvent(f"unparsable JSON: expected bytes or str, got {type(body).__name__}")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise MalformedEvent("unparsable JSON: nested too deeply") from None
    except ValueError as exc:
        raise MalformedEvent(f"unparsable JSON: {exc}") from None
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise MalformedEvent(
            f"unparsable JSON: top level is {_json_type(value)}, expected an event object or an "
            "array of events"
        )
    events: list[Mapping[str, object]] = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise MalformedEvent(
                f"unparsable JSON: element {index} is {_json_type(item)}, expected an event object"
            )
        events.append(item)
    return events
