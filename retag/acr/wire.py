"""ACR's data-plane JSON: listing entries -> `TagInfo`/`ManifestInfo`, paging via `Link`, quoting.

Pure: no I/O, no SDK. Wire shapes are those of ACR data-plane API 2021-07-01 (see
`/work/shared/design.md` §1): `_tags` pages `{"tags": [{"name", "digest", "createdTime",
"lastUpdateTime", "changeableAttributes": {...}}]}`, `_manifests` pages `{"manifests": [...]}`,
error bodies `{"errors": [{"code", "message"}]}`. The entries are read straight from the JSON: the
SDK's model deserializer costs ~0.5 ms per tag, which dominated listing big repositories.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote as _url_quote

from retag.logline import clip, redact
from retag.registry import ManifestInfo, RegistryError, TagInfo
from retag.timeutil import as_utc

_T = TypeVar("_T")

PAGE_SIZE = 100
"""`n` for the ACR listing APIs (`_tags`, `_manifests`, `_catalog`). ACR's documented default page
is 100 and Azure's own acr-cli (`acr purge`) always asks for 100 (`manifestTagFetchCount`); larger
values are not documented as honoured, so 100 is the largest page we can rely on."""

_LINK_RE = re.compile(r"\s*<([^>]*)>\s*(?:;(.*))?$")
_REL_NEXT_RE = re.compile(r'rel\s*=\s*"?next"?')


class WireError(RegistryError, ValueError):
    """The registry's answer does not have the documented shape (a permanent error)."""


def quote(segment: str) -> str:
    """A path segment or query value percent-encoded like the SDK's serializer (`safe=""`)."""
    return _url_quote(segment, safe="")


def media_type(content_type: str | None) -> str:
    """`Content-Type` without parameters (`; charset=...`)."""
    return (content_type or "").split(";", 1)[0].strip()


def _parse_time(value: object, field: str) -> datetime:
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, str):
        try:
            return as_utc(datetime.fromisoformat(value))
        except ValueError:
            pass
    raise WireError(f"registry listing has an invalid {field}: {value!r}")


def _flag(attributes: object, name: str) -> bool:
    """A `changeableAttributes` permission: True when the attributes or the flag are missing
    (ACR's default, and what the SDK's `can_delete is not False` gave); booleans as sent, plus the
    forms the SDK's deserializer accepts ("true"/"false", 1/0). Any other value is treated as
    False: a lock we cannot read is kept as a lock."""
    if not isinstance(attributes, Mapping):
        return True
    value = attributes.get(name)
    if value is None or isinstance(value, bool):
        return value is not False
    if isinstance(value, str) and value.lower() in ("true", "1"):
        return True
    return isinstance(value, int) and value == 1


def tag_info_from_json(entry: Mapping[str, Any]) -> TagInfo:
    """A `TagInfo` from one ACR `_tags` listing entry (or `tag` of a GET)."""
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise WireError("registry listing has a tag without a name")
    digest = entry.get("digest")
    if not isinstance(digest, str) or not digest:
        raise WireError(f"registry listing has tag {name!r} without a digest")
    attributes = entry.get("changeableAttributes")
    return TagInfo(
        name=name,
        digest=digest,
        created_on=_parse_time(entry.get("createdTime"), "createdTime"),
        last_updated_on=_parse_time(entry.get("lastUpdateTime"), "lastUpdateTime"),
        can_delete=_flag(attributes, "deleteEnabled"),
        can_write=_flag(attributes, "writeEnabled"),
    )


def manifest_info_from_json(entry: Mapping[str, Any]) -> ManifestInfo:
    """A `ManifestInfo` from one ACR `_manifests` listing entry (or `manifest` of a GET)."""
    digest = entry.get("digest")
    if not isinstance(digest, str) or not digest:
        raise WireError("registry listing has a manifest without a digest")
    tags = entry.get("tags") or []
    references = entry.get("references") or []
    kind = entry.get("mediaType")
    size = entry.get("imageSize")
    attributes = entry.get("changeableAttributes")
    return ManifestInfo(
        digest=digest,
        media_type=kind if isinstance(kind, str) else None,
        tags=tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else (),
        created_on=_parse_time(entry.get("createdTime"), "createdTime"),
        last_updated_on=_parse_time(entry.get("lastUpdateTime"), "lastUpdateTime"),
        references=tuple(
            r["digest"]
            for r in (references if isinstance(references, list) else [])
            if isinstance(r, Mapping) and isinstance(r.get("digest"), str)
        ),
        has_subject=bool(entry.get("subject")),
        can_delete=_flag(attributes, "deleteEnabled"),
        can_write=_flag(attributes, "writeEnabled"),
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
    )


def json_object(response: Any) -> dict[str, Any]:
    """The JSON object body of an azure-core response; WireError when it is not one."""
    try:
        body = response.json()
    except ValueError as exc:
        raise WireError(f"the registry sent invalid JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise WireError("the registry sent JSON that is not an object")
    return body


def error_detail(response: Any) -> str:
    """`CODE message` of the first entry of an ACR/OCI error body (redacted, clipped), or ""."""
    try:
        body = response.json()
    except Exception:  # not JSON, not read, ...
        return ""
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code = str(errors[0].get("code") or "").strip()
        message = str(errors[0].get("message") or "").strip()
        return clip(redact(" ".join(part for part in (code, message) if part)), 300)
    return ""


def next_link(header: str | None) -> str | None:
    """The URL of `Link: <url>; rel="next"` (relative to the registry), or None.

    The SDK's pager takes the first `<...>` of the header whatever its `rel`; we take the
    `rel="next"` link, and a bare `<url>` (no parameters at all) like the SDK does."""
    if not header:
        return None
    for part in header.split(","):
        match = _LINK_RE.match(part)
        if match is None:
            continue
        params = match.group(2)
        if params is None or not params.strip() or _REL_NEXT_RE.search(params):
            return match.group(1) or None
    return None


def first_page(path: str, page_size: int, query: Mapping[str, str]) -> str:
    """`path?n=<page_size>&<query>`, values percent-encoded like the SDK's query serializer."""
    return f"{path}?n={page_size}" + "".join(f"&{k}={quote(v)}" for k, v in query.items())


def paged(
    get_page: Callable[[str], Any],
    url: str,
    field: str,
    parse: Callable[[Mapping[str, Any]], _T],
) -> Iterator[_T]:
    """The entries of `field` of every page of an ACR listing, each made into a `_T` by `parse`,
    one page in memory at a time. `get_page(url)` returns the 200 response of one page; the next
    page is the `Link` URL, verbatim. Entries that are not JSON objects are skipped; an entry
    `parse` refuses fails the listing (WireError), and so does a next link to the same page
    (the SDK's pager would loop forever)."""
    current: str | None = url
    while current is not None:
        response = get_page(current)
        body = json_object(response)
        following = next_link(response.headers.get("Link"))
        entries = body.get(field) or []
        if not isinstance(entries, list):
            raise WireError(f"'{field}' in the listing is not a list")
        for entry in entries:
            if isinstance(entry, Mapping):
                yield parse(entry)
        if following == current:
            raise WireError(f"the listing's next link is the same page: {current}")
        current = following
