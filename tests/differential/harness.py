"""Run the same /v2 scenario against every registry and compare what they answer.

A `Target` is one running registry (Debian's docker-registry, the reference, or our emulator). A
scenario step's answer is reduced to an `Observation` (status, key headers, error codes, a hash of
the body); `assert_same()` requires the observations to be equal field by field, except for the
fields listed for that step in `differences.INTENDED` - and even those are asserted: each target
must show exactly the value recorded there, so an intended difference cannot drift silently.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from tests.differential.differences import INTENDED
from tests.support.images import V2Session

REFERENCE = "distribution"


@dataclass(frozen=True)
class Target:
    name: str  # "distribution" (the reference) or "emulator"
    endpoint: str  # https://127.0.0.1:PORT
    login_server: str  # 127.0.0.1:PORT
    ca_bundle: str
    cert_dir: str  # directory holding only ca.crt (skopeo --*-cert-dir)

    def session(self) -> V2Session:
        return V2Session(self.endpoint, verify=self.ca_bundle)


Observation = dict[str, Any]


def unique_repository(prefix: str) -> str:
    """A fresh repository name (lowercase, valid everywhere) so tests never share state."""
    return f"diff/{prefix}-{secrets.token_hex(4)}"


def error_codes(response: requests.Response) -> list[str] | None:
    """The distinct `errors[].code` values (sorted) of a registry error body, else None.

    Distinct and sorted: distribution reports one MANIFEST_BLOB_UNKNOWN per missing blob, and
    clients (the SDK, skopeo) only look at the codes, not at how many entries repeat them.
    """
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list):
        return None
    return sorted({str(error.get("code")) for error in body["errors"] if isinstance(error, dict)})


def base_media_type(value: str | None) -> str | None:
    return value.split(";")[0].strip() if value else value


def observe(response: requests.Response, *fields: str) -> Observation:
    """Reduce a response to the named fields (all of them when none are named).

    status, digest (Docker-Content-Digest), content_type, content_length, location, content_range,
    api_version (Docker-Distribution-Api-Version), body_sha256, errors (error codes, 4xx/5xx only),
    error_content_type (media type of an error body, parameters dropped).
    """
    headers = response.headers
    everything: Observation = {
        "status": response.status_code,
        "digest": headers.get("Docker-Content-Digest"),
        "content_type": headers.get("Content-Type"),
        "content_length": headers.get("Content-Length"),
        "location": headers.get("Location"),
        "content_range": headers.get("Content-Range"),
        "api_version": headers.get("Docker-Distribution-Api-Version"),
        "body_sha256": hashlib.sha256(response.content).hexdigest(),
        "errors": error_codes(response) if response.status_code >= 400 else None,
        "error_content_type": (
            base_media_type(headers.get("Content-Type")) if response.status_code >= 400 else None
        ),
    }
    if not fields:
        return everything
    unknown = set(fields) - set(everything)
    if unknown:
        raise ValueError(f"unknown observation fields {sorted(unknown)}")
    return {name: everything[name] for name in fields}


def observe_json(response: requests.Response, repository: str | None = None) -> Observation:
    """status, parsed JSON body and Link header (for tags/list, _catalog).

    A `tags` list is sorted: distribution 2.8 returns tags in directory order (unsorted), so the
    order is not part of the reference behaviour. With `repository`, that name is replaced by
    "<repo>" in the body's `name` and in the Link header, so recorded values stay static.
    """
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    link = response.headers.get("Link")
    if isinstance(body, dict) and isinstance(body.get("tags"), list):
        body = {**body, "tags": sorted(body["tags"])}
    if repository is not None:
        if isinstance(body, dict) and body.get("name") == repository:
            body = {**body, "name": "<repo>"}
        if link is not None:
            link = link.replace(repository, "<repo>").replace(quote(repository, safe=""), "<repo>")
    return {"status": response.status_code, "json": body, "link": link}


def run_everywhere(
    targets: Mapping[str, Target], scenario: Callable[[Target], Observation]
) -> dict[str, Observation]:
    return {name: scenario(target) for name, target in targets.items()}


def matches(value: object, recorded: object) -> bool:
    """Equality, except that a compiled regex as recorded value must fullmatch str(value)."""
    if isinstance(recorded, re.Pattern):
        return value is not None and recorded.fullmatch(str(value)) is not None
    return value == recorded


def assert_same(step: str, observations: Mapping[str, Observation]) -> Observation:
    """Assert every target observed the same thing for `step`, modulo INTENDED[step].

    Returns the reference (distribution) observation so callers can also assert absolute values.
    """
    reference = observations[REFERENCE]
    difference = INTENDED.get(step)
    differing = set(difference.fields) if difference else set()
    for name, observed in observations.items():
        if difference is not None:
            expected = difference.fields
            for field_name in differing:
                want = expected[field_name].get(name, reference.get(field_name))
                assert matches(observed.get(field_name), want), (
                    f"{step}: {name} {field_name}={observed.get(field_name)!r}, the intended "
                    f"difference recorded {want!r} ({difference.reason})"
                )
        if name == REFERENCE:
            continue
        mismatched = {
            key: (reference.get(key), observed.get(key))
            for key in set(reference) | set(observed)
            if key not in differing and reference.get(key) != observed.get(key)
        }
        assert not mismatched, (
            f"{step}: {name} differs from {REFERENCE} (field: (reference, {name})): "
            + json.dumps(mismatched, default=str, indent=1)
        )
    return reference
