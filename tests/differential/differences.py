"""The ONE list of intended differences between the emulator and distribution (the reference).

Differential tests compare every step field by field. A step listed here may differ in exactly the
listed fields, and each target must then show exactly the recorded value (so the difference is
pinned, not ignored). Anything not listed must be identical. Keys are step names used by the tests.

Why distribution is the reference: it is the CNCF registry implementation, the emulator imitates
ACR, and ACR speaks the same /v2 protocol. Where ACR deliberately behaves differently from
distribution (and the emulator follows ACR), the difference is recorded here with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Difference:
    reason: str
    # field -> {target name -> value that target must show (a compiled regex must fullmatch)}
    fields: Mapping[str, Mapping[str, object]]


def _both(distribution: object, emulator: object) -> Mapping[str, object]:
    return {"distribution": distribution, "emulator": emulator}


_ROUTER_404 = (
    "distribution 2.8's router only matches names/tags in its grammar, so an invalid one never "
    "reaches a handler and gets a plain-text '404 page not found'. The OCI distribution spec "
    "defines NAME_INVALID/TAG_INVALID for this and the emulator answers them (issue 2). Both "
    "refuse and store nothing; clients see a 4xx either way."
)


def _router_404(code: str) -> Difference:
    return Difference(
        reason=_ROUTER_404,
        fields={
            "status": _both(404, 400),
            "errors": _both(None, [code]),
            "error_content_type": _both("text/plain", "application/json"),
        },
    )


OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"

_DISTRIBUTION_500 = (
    "a distribution 2.8 bug: it answers 500 UNKNOWN (an internal error) to a malformed request; "
    "the emulator answers the 400 error code the spec defines for it."
)

INTENDED: dict[str, Difference] = {
    # --- auth: distribution runs without auth; ACR (and the emulator, even anonymous) challenge.
    "auth.ping_without_token": Difference(
        reason=(
            "ACR requires a bearer token on every /v2 request, anonymous pull included; its /v2/ "
            "ping challenge names realm and service but no scope. Our distribution has no auth."
        ),
        fields={
            "status": _both(200, 401),
            "challenge": _both(
                None,
                re.compile(
                    r'Bearer realm="https://127\.0\.0\.1:\d+/oauth2/token",'
                    r'service="127\.0\.0\.1:\d+"'
                ),
            ),
        },
    ),
    "auth.token_requests": Difference(
        reason="The emulator, like ACR, needs the anonymous token dance; distribution has no auth.",
        fields={"token_requests": _both(False, True)},
    ),
    # --- paging: ACR honours `n`/`last` on tags/list and pages with a Link header.
    "tags.list_n": Difference(
        reason=(
            "distribution 2.8 ignores `n` and `last` on tags/list (pagination arrived in v3); "
            "ACR and the emulator return at most n tags after `last` and a Link to the next page."
        ),
        fields={
            "json": _both(
                {"name": "<repo>", "tags": ["a", "b", "c", "c-1"]},
                {"name": "<repo>", "tags": ["a", "b"]},
            ),
            "link": _both(None, '</v2/<repo>/tags/list?last=b&n=2>; rel="next"'),
        },
    ),
    "tags.list_last": Difference(
        reason="distribution 2.8 ignores `last` on tags/list; ACR and the emulator honour it.",
        fields={
            "json": _both(
                {"name": "<repo>", "tags": ["a", "b", "c", "c-1"]},
                {"name": "<repo>", "tags": ["c", "c-1"]},
            ),
        },
    ),
    # --- tag deletion: ACR's /acr/v1 API deletes a single tag; distribution cannot.
    "acr.delete_tag": Difference(
        reason=(
            "Deleting one tag (keeping the manifest and its other tags) is ACR's "
            "DELETE /acr/v1/{repo}/_tags/{tag}; distribution has no such API (404)."
        ),
        fields={"status": _both(404, 202)},
    ),
    "manifest.get_deleted_tag": Difference(
        reason="Follows acr.delete_tag: the tag is gone on the emulator, kept on distribution.",
        fields={"status": _both(200, 404), "errors": _both(None, ["MANIFEST_UNKNOWN"])},
    ),
    # --- legacy schema 1 conversion.
    "manifest.get_docker_without_accept": Difference(
        reason=(
            "distribution 2.8 rewrites a Docker v2 manifest as signed schema 1 (new digest) for "
            "clients that do not Accept v2; schema 1 is deprecated and every client we use sends "
            "Accept. The emulator always serves the stored bytes."
        ),
        fields={
            "content_type": _both(
                "application/vnd.docker.distribution.manifest.v1+prettyjws",
                "application/vnd.docker.distribution.manifest.v2+json",
            ),
            "same_bytes": _both(False, True),
            "same_digest": _both(False, True),
        },
    ),
    "manifest.get_oci_without_accept": Difference(
        reason=(
            "distribution 2.8 hides an OCI manifest from clients that do not Accept OCI types "
            "(404 MANIFEST_UNKNOWN); the emulator serves the stored bytes whatever the Accept."
        ),
        fields={
            "status": _both(404, 200),
            "content_type": _both("application/json; charset=utf-8", OCI_MANIFEST),
            "same_bytes": _both(False, True),
            "same_digest": _both(False, True),
            "errors": _both(["MANIFEST_UNKNOWN"], None),
        },
    ),
    # --- uploads: single-POST monolithic upload is optional in the spec.
    "upload.monolithic_post": Difference(
        reason=(
            "The OCI distribution spec makes single-POST upload (`POST ...?digest=`) optional: "
            "distribution 2.8 ignores the body and opens a session (202), the emulator completes "
            "the upload (201). Both conform; clients must handle either."
        ),
        fields={"status": _both(202, 201), "completed": _both(False, True)},
    ),
    # --- invalid names and tags.
    "error.name_invalid": _router_404("NAME_INVALID"),
    "error.name_uppercase": _router_404("NAME_INVALID"),
    "error.tag_invalid": _router_404("TAG_INVALID"),
    "error.tag_too_long": _router_404("TAG_INVALID"),
    # --- distribution bugs (500 on malformed input).
    "error.manifest_digest_malformed": Difference(
        reason=_DISTRIBUTION_500,
        fields={"status": _both(500, 400), "errors": _both(["UNKNOWN"], ["DIGEST_INVALID"])},
    ),
    "error.manifest_schema_version_3": Difference(
        reason=_DISTRIBUTION_500,
        fields={"status": _both(500, 400), "errors": _both(["UNKNOWN"], ["MANIFEST_INVALID"])},
    ),
}

# Differences that are NOT intended: the emulator is wrong (or unverified against ACR) and the
# test is marked xfail(strict=True) with this reason until the emulator is fixed.
KNOWN_EMULATOR_BUGS: dict[str, str] = {}


# --- The OCI distribution-spec conformance suite (tests/peers/test_conformance.py) ---------------
@dataclass(frozen=True)
class ConformanceFailure:
    """Conformance test cases the emulator is meant to fail, and why.

    `pattern` fullmatches leaf test names without the suite's "OCI Conformance Test/" prefix.
    Every failing case must match exactly one entry, no matched case may pass, and every entry
    must match at least one failure: the suite's result is pinned, not ignored. `owner` names the
    change expected to fix an entry that is a known gap rather than intended ("expected for now").
    """

    pattern: re.Pattern[str]
    reason: str
    owner: str | None = None


_SHA512 = (
    "ACR accepts sha256 digests only: 'Azure Container Registry doesn't support uploading "
    "manifests that use sha512 digests' (dotnet/sdk#56089, 2026-09-01), as distribution answers "
    "400 DIGEST_INVALID (distribution/distribution#4420); image-spec registers sha512 as MAY. "
    "The emulator refuses every sha512 digest with 400 UNSUPPORTED. The suite's 'bad digest' "
    "cases pass (a 400 is what they expect) and so does the tag listing."
)

CONFORMANCE_EXPECTED_FAILURES: tuple[ConformanceFailure, ...] = (
    ConformanceFailure(re.compile(r"sha512 blobs/(?!bad digest ).+"), _SHA512),
    ConformanceFailure(re.compile(r"sha512/(?!tag-list$).+"), _SHA512),
)
