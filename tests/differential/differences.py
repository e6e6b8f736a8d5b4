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
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")

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
    # manifest.get_oci_without_accept is no longer a difference: the emulator now negotiates
    # like ACR (and distribution): 404 MANIFEST_UNKNOWN when Accept does not list the OCI type.
    # --- DELETE of a manifest by tag.
    "manifest.delete_by_tag": Difference(
        reason=(
            "ACR answers 405 UNSUPPORTED 'A manifest can only be deleted by digest.' (Go SDK "
            "recording TestClient_DeleteManifest_wrongDigest); distribution 2.8 answers 400 "
            "DIGEST_INVALID. The emulator follows ACR. Both refuse and delete nothing."
        ),
        fields={
            "status": _both(400, 405),
            "errors": _both(["DIGEST_INVALID"], ["UNSUPPORTED"]),
        },
    ),
    # --- blob downloads: ACR redirects to storage, which sends no registry headers.
    **{
        step: Difference(
            reason=(
                "ACR answers a blob GET with 307 to storage (Windows-Azure-Blob), which does "
                "not send Docker-Content-Digest; the emulator redirects to its storage listener "
                "the same way. distribution 2.8 with filesystem storage serves the blob itself."
            ),
            fields={"digest": _both(_DIGEST, None)},
        )
        for step in ("blob.get", "blob.get_range", "blob.get_range_tail")
    },
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


# =================================================================================================
# Emulator vs real ACR. The emulator's default is what ACR was recorded doing (tests/fidelity has
# one test per recorded fact). What follows is every place it knowingly differs from ACR, or where
# ACR's behaviour is unknown and the emulator had to decide. emulator/README.md lists the same keys
# (tests/fidelity/test_differences.py keeps the two in step).
# =================================================================================================


@dataclass(frozen=True)
class AcrDifference:
    kind: str  # "intended" (a deliberate local convenience) or "unknown" (ACR not observed)
    emulator: str  # what the emulator does
    reason: str


ACR_DIFFERENCES: dict[str, AcrDifference] = {
    "anonymous.writes_by_default": AcrDifference(
        kind="intended",
        emulator=(
            "anonymous tokens get every action by default (pushes, deletes, metadata writes), so "
            "tests and `make demo` need no credential"
        ),
        reason=(
            "ACR has no anonymous writes: anonymous pull grants pull + metadata_read only and a "
            "write gets 401 insufficient_scope. `anonymous_actions=('pull',)` / "
            "`--anonymous-actions pull` gives exactly that; `--no-anonymous` is ACR's default."
        ),
    ),
    "push.scope_push_suffices": AcrDifference(
        kind="unknown",
        emulator="manifest PUT and uploads challenge for `pull,push` but accept a push-only token",
        reason="Recordings show the challenge; how ACR treats a token holding push alone is not.",
    ),
    "accept.docker_types_always_served": AcrDifference(
        kind="unknown",
        emulator=(
            "Docker v2 manifests and manifest lists are served whatever Accept says; only OCI "
            "manifests/indexes are refused (404 MANIFEST_UNKNOWN)"
        ),
        reason=(
            "Recorded refusals exist for OCI types only (Azure/acr#764, Azure/acr-cli#132). "
            "distribution would rewrite Docker v2 as schema 1 or pick a platform; schema 1 is "
            "deprecated and every client we drive sends Accept."
        ),
    ),
    "accept.wildcard_does_not_admit_oci": AcrDifference(
        kind="unknown",
        emulator="`Accept: */*` alone does not admit OCI types (only exact media types do)",
        reason=(
            "distribution's rule, whose error messages ACR returns word for word; no recording "
            "of ACR with `*/*` alone (the Python SDK lists `*/*` and every type explicitly)."
        ),
    ),
    "paging.time_order_after_deleted_last": AcrDifference(
        kind="unknown",
        emulator=(
            "orderby=timedesc|timeasc with a `last` tag deleted (or moved) since its page was "
            "served resumes at the position it had then: no restart (no loop), no unchanged "
            "survivor skipped; a tag updated in between may be seen twice or not at all"
        ),
        reason="ACR's behaviour is not recorded; the old emulator restarted from the first tag.",
    ),
    "storage.endpoint": AcrDifference(
        kind="intended",
        emulator=(
            "blob GETs redirect (307) to https://localhost:PORT/... with a SAS-like query "
            "(sv, sr, se, sp, sig); HEAD is answered by the registry (200); "
            "`--no-blob-redirect` serves blobs directly"
        ),
        reason=(
            "ACR redirects to *.blob.core.windows.net or <name>.<region>.data.azurecr.io; a "
            "loopback host name other than 127.0.0.1 makes clients drop the registry token the "
            "same way. ACR's answer to a blob HEAD was not recorded."
        ),
    ),
    "storage.refuses_authorization": AcrDifference(
        kind="intended",
        emulator="storage answers 403 AuthenticationFailed (logged) when Authorization is sent",
        reason="A leaked registry token must fail loudly; real storage's answer is not recorded.",
    ),
    "time.microsecond_clock": AcrDifference(
        kind="intended",
        emulator=(
            "timestamps have microsecond resolution: /acr/v1 times show at most 6 fractional "
            "digits after trimming zeros (ACR: up to 7); data.timestamp's last 3 digits come from "
            "the wall clock's nanoseconds"
        ),
        reason="Python datetimes hold microseconds; clients must parse 1-7 digits either way.",
    ),
    "events.fixed_delay_and_region": AcrDifference(
        kind="intended",
        emulator="eventTime = data.timestamp + 200 ms; data.location is always 'westus'",
        reason="The examples show 0.2-0.35 s and a region; a constant keeps tests reproducible.",
    ),
    "events.push_by_digest_subject": AcrDifference(
        kind="unknown",
        emulator="ImagePushed for a push by digest has subject `<repo>@<digest>` and no tag",
        reason="Only tagged pushes appear in the examples.",
    ),
    "manifest.image_size": AcrDifference(
        kind="unknown",
        emulator="imageSize = manifest length + sizes of the descriptors it lists (index too)",
        reason=(
            "Recordings disagree over time: 2021 (JS) shows 525 = the manifest length, 2022 "
            "(Go) 2479 = the layer size alone; index values (5325 for ~9 children) fit "
            "'own length + children'."
        ),
    ),
    "manifest.unknown_digest_message": AcrDifference(
        kind="unknown",
        emulator="MANIFEST_UNKNOWN 'manifest unknown' with detail {Name, Revision} for a digest",
        reason="Only the by-tag message is recorded ('manifest tagged by \"x\" is not found').",
    ),
    "attributes.quarantine_state": AcrDifference(
        kind="intended",
        emulator="changeableAttributes has no quarantineState",
        reason="Quarantine is not modelled; ACR adds quarantineState on some registries.",
    ),
    "tokens.access_claim_casing": AcrDifference(
        kind="unknown",
        emulator="access tokens carry access: [{Type, Name, Actions}]",
        reason=(
            "Issue 13's statement; recordings sanitize access tokens. The recorded refresh "
            "tokens use the same capitalised style (permissions.Actions/NotActions)."
        ),
    ),
    "extensions.subject_artifact_type": AcrDifference(
        kind="intended",
        emulator="_manifests entries may carry `subject` and `artifactType`",
        reason="Marks referrers for the pruner's tests; ACR exposes them via the referrers API.",
    ),
}
