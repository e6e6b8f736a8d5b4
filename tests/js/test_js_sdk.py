"""A second SDK we did not write: the JavaScript `@azure/container-registry` against the emulator.

`tests/js/drive.mjs` calls every public method of `ContainerRegistryClient`, `ContainerRepository`,
`RegistryArtifact` and `ContainerRegistryContentClient` (the list is read from the package's own
.d.ts files, so a new SDK method fails the coverage test until the driver calls it), unmodified,
over HTTPS to 127.0.0.1 with the emulator's CA in `NODE_EXTRA_CA_CERTS`. For each step it reports
whether the call succeeded (or failed with the expected status) and which slice of the emulator's
request log it wrote; this test reads that slice from the emulator itself and checks the requests.

Three modes:
- `credential`: a TokenCredential (an object whose `getToken()` resolves to an AAD-shaped token;
  the emulator's `/oauth2/exchange` accepts any non-empty AAD token, see
  tests/support/credentials.py) -> `/oauth2/exchange` -> `/oauth2/token` (refresh token);
- `anonymous`: no credential (`/oauth2/token` with grant_type=password) on the emulator's default
  all-actions anonymous access (the no-Azure demo mode);
- `anonymous-pull`: anonymous access restricted to pull + metadata_read, as on a real registry
  with anonymous pull: reads work, every write is refused with 401 after the token exchange.

Evidence for the request sequences (real ACR traffic recorded by the JS SDK's own tests,
Azure/azure-sdk-for-js `sdk/containerregistry/container-registry/recordings/node/`):
- `repository_and_artifact_tests/recording_deletes_a_given_tag.json` (2023-03-02, SDK
  1.1.0-beta.3): DELETE `/acr/v1/<repo>/_tags/<tag>` -> 401 (scope `repository:<repo>:delete`) ->
  POST `/oauth2/exchange` -> POST `/oauth2/token` -> DELETE again -> 202; GET of the deleted tag
  -> 404 `TAG_UNKNOWN`.
- `containerregistrycontentclient/recording_can_upload_blob.json` (2023-05-11, 1.1.0-beta.4):
  POST `/v2/<repo>/blobs/uploads/` -> 202 with a relative `Location`
  (`?_nouploadcache=false&_state=...`), PATCH -> 202, PUT `...&digest=` -> 201 with
  `Docker-Content-Digest`; blob GET -> 200, or 307 to storage (the emulator answers 200 today;
  the 307 redirect is another helper's fidelity item, so either is accepted here).
- `anonymous_access_tests/recording_should_list_repositories_with_anonymous_access.json` and
  `recording_should_throw_error_setting_properties_with_anonymous_access.json` (2023-03-02):
  anonymous `/acr/v1/_catalog` -> 401 `registry:catalog:*` -> POST `/oauth2/token`
  (`grant_type=password`, empty refresh token) -> 200; anonymous PATCH `/acr/v1/<repo>` -> 401
  -> token -> 401 again, and the SDK raises.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator import Emulator
from tests.support.node import JS_DIR, require_node_package

pytestmark = pytest.mark.node

PACKAGE = "@azure/container-registry"
NODE_TIMEOUT_SECONDS = 180
D = r"sha256:[0-9a-f]{64}"
U = r"[0-9a-f-]{8,}"  # upload session id

# The classes/interfaces whose public methods must all be driven, and their .d.ts file.
SURFACE = {
    "ContainerRegistryClient": "containerRegistryClient.d.ts",
    "ContainerRepository": "containerRepository.d.ts",
    "RegistryArtifact": "registryArtifact.d.ts",
    "ContainerRegistryContentClient": "content/containerRegistryContentClient.d.ts",
}


def _upload(repo: str) -> list[str]:
    return [
        f"POST /v2/{repo}/blobs/uploads/ 202",
        f"PATCH /v2/{repo}/blobs/uploads/{U} 202",
        f"PUT /v2/{repo}/blobs/uploads/{U}\\?digest={D} 201",
    ]


def _expected_full() -> dict[str, list[str]]:
    """Registry requests per step (auth traffic and redirect targets left out), as regexes over
    `METHOD path[?query] status`; the query shows every parameter but api-version and the upload
    state, sorted by name."""
    a, g, d = "{prefix}/app", "{prefix}/gone", "{prefix}/drop"
    return {
        "uploadBlob (config, Buffer)": _upload(a),
        "uploadBlob (5 MiB layer, stream)": [
            f"POST /v2/{a}/blobs/uploads/ 202",
            f"PATCH /v2/{a}/blobs/uploads/{U} 202",
            f"PATCH /v2/{a}/blobs/uploads/{U} 202",
            f"PUT /v2/{a}/blobs/uploads/{U}\\?digest={D} 201",
        ],
        "setManifest (OCI object, tag v1)": [f"PUT /v2/{a}/manifests/v1 201"],
        "setManifest (Docker bytes, tag docker)": [f"PUT /v2/{a}/manifests/docker 201"],
        "setManifest (OCI index, by digest)": [f"PUT /v2/{a}/manifests/{D} 201"],
        "setManifest (same index bytes, tag multi = a re-tag)": [
            f"PUT /v2/{a}/manifests/multi 201"
        ],
        "getManifest (tag v1)": [f"GET /v2/{a}/manifests/v1 200"],
        "getManifest (Docker, by digest)": [f"GET /v2/{a}/manifests/{D} 200"],
        "getManifest (index, tag multi)": [f"GET /v2/{a}/manifests/multi 200"],
        "getManifest (unknown tag -> 404)": [f"GET /v2/{a}/manifests/no-such-tag 404"],
        "downloadBlob (5 MiB layer)": [f"GET /v2/{a}/blobs/{D} (200|307)"],
        "uploadBlob (extra blob)": _upload(a),
        "deleteBlob": [f"DELETE /v2/{a}/blobs/{D} 202"],
        "downloadBlob (deleted blob -> 404)": [f"GET /v2/{a}/blobs/{D} 404"],
        "setManifest (repository gone, tag v1)": [
            *_upload(g),
            *_upload(g),
            f"PUT /v2/{g}/manifests/v1 201",
        ],
        "setManifest (repository drop, tag v1)": [
            *_upload(d),
            *_upload(d),
            f"PUT /v2/{d}/manifests/v1 201",
        ],
        "listRepositoryNames": ["GET /acr/v1/_catalog 200"],
        "listRepositoryNames.byPage (maxPageSize 1)": [
            "GET /acr/v1/_catalog\\?n=1 200",
            f"GET /acr/v1/_catalog\\?last={a}&n=1 200",
            f"GET /acr/v1/_catalog\\?last={d}&n=1 200",
        ],
        "listRepositoryNames.byPage (resume from a continuationToken)": [
            "GET /acr/v1/_catalog\\?n=1 200",
            f"GET /acr/v1/_catalog\\?last={a}&n=1 200",
            f"GET /acr/v1/_catalog\\?last={d}&n=1 200",
        ],
        "getRepository": [],
        "getArtifact (tag v1)": [],
        "getProperties": [f"GET /acr/v1/{a} 200"],
        "updateProperties": [f"PATCH /acr/v1/{a} 200"],
        "listManifestProperties": [f"GET /acr/v1/{a}/_manifests 200"],
        "listManifestProperties.byPage (LastUpdatedOnDescending, maxPageSize 1)": [
            f"GET /acr/v1/{a}/_manifests\\?n=1&orderby=timedesc 200",
            f"GET /acr/v1/{a}/_manifests\\?last={D}&n=1&orderby=timedesc 200",
            f"GET /acr/v1/{a}/_manifests\\?last={D}&n=1&orderby=timedesc 200",
        ],
        "listManifestProperties (LastUpdatedOnAscending)": [
            f"GET /acr/v1/{a}/_manifests\\?orderby=timeasc 200"
        ],
        "getArtifact (from repository, by digest)": [],
        # A tag is resolved to its digest through its properties first (RegistryArtifact.getDigest).
        "getManifestProperties (tag v1)": [
            f"GET /acr/v1/{a}/_tags/v1 200",
            f"GET /acr/v1/{a}/_manifests/{D} 200",
        ],
        "getManifestProperties (index, by digest)": [f"GET /acr/v1/{a}/_manifests/{D} 200"],
        "updateManifestProperties (lock)": [f"PATCH /acr/v1/{a}/_manifests/{D} 200"],
        "delete (locked manifest -> 405)": [f"DELETE /v2/{a}/manifests/{D} 405"],
        "updateManifestProperties (unlock)": [f"PATCH /acr/v1/{a}/_manifests/{D} 200"],
        "getTagProperties": [f"GET /acr/v1/{a}/_tags/v1 200"],
        "getTagProperties (unknown tag -> 404)": [f"GET /acr/v1/{a}/_tags/no-such-tag 404"],
        "updateTagProperties": [f"PATCH /acr/v1/{a}/_tags/v1 200"] * 2,
        # The JS SDK lists every tag of the repository (it sends no `digest=` filter).
        "listTagProperties": [f"GET /acr/v1/{a}/_tags 200"],
        "listTagProperties.byPage (LastUpdatedOnDescending, maxPageSize 1)": [
            f"GET /acr/v1/{a}/_tags\\?n=1&orderby=timedesc 200",
            f"GET /acr/v1/{a}/_tags\\?last=multi&n=1&orderby=timedesc 200",
            f"GET /acr/v1/{a}/_tags\\?last=docker&n=1&orderby=timedesc 200",
        ],
        "setManifest (tag extra on v1)": [f"PUT /v2/{a}/manifests/extra 201"],
        "deleteTag": [f"DELETE /acr/v1/{a}/_tags/extra 202"],
        "getTagProperties (deleted tag -> 404)": [f"GET /acr/v1/{a}/_tags/extra 404"],
        "delete (tag docker)": [
            f"GET /acr/v1/{a}/_tags/docker 200",
            f"DELETE /v2/{a}/manifests/{D} 202",
        ],
        "getManifest (deleted manifest -> 404)": [f"GET /v2/{a}/manifests/{D} 404"],
        "deleteManifest (index)": [f"DELETE /v2/{a}/manifests/{D} 202"],
        "deleteRepository": [f"DELETE /acr/v1/{g} 202"],
        "delete (repository)": [f"DELETE /acr/v1/{d} 202"],
        "getProperties (deleted repository -> 404)": [f"GET /acr/v1/{d} 404"],
        "listRepositoryNames (after deletes)": ["GET /acr/v1/_catalog 200"],
    }


def _expected_anonymous_pull() -> dict[str, list[str]]:
    a = "{prefix}/app"
    # A refused write: 401, the anonymous token, the same request again: 401 (the one kept here).
    return {
        "setup: push v1 with a credential": [
            *_upload(a),
            *_upload(a),
            f"PUT /v2/{a}/manifests/v1 201",
        ],
        "listRepositoryNames": ["GET /acr/v1/_catalog 200"],
        "getProperties": [f"GET /acr/v1/{a} 200"],
        "listManifestProperties": [f"GET /acr/v1/{a}/_manifests 200"],
        "getManifestProperties": [
            f"GET /acr/v1/{a}/_tags/v1 200",
            f"GET /acr/v1/{a}/_manifests/{D} 200",
        ],
        "getTagProperties": [f"GET /acr/v1/{a}/_tags/v1 200"],
        "listTagProperties": [f"GET /acr/v1/{a}/_tags 200"],
        "getManifest": [f"GET /v2/{a}/manifests/v1 200"],
        "downloadBlob": [f"GET /v2/{a}/blobs/{D} (200|307)"],
        "updateProperties (-> 401)": [f"PATCH /acr/v1/{a} 401"],
        "updateManifestProperties (-> 401)": [f"PATCH /acr/v1/{a}/_manifests/{D} 401"],
        "updateTagProperties (-> 401)": [f"PATCH /acr/v1/{a}/_tags/v1 401"],
        "deleteTag (-> 401)": [f"DELETE /acr/v1/{a}/_tags/v1 401"],
        "delete (-> 401)": [f"DELETE /v2/{a}/manifests/{D} 401"],
        "deleteRepository (-> 401)": [f"DELETE /acr/v1/{a} 401"],
        "delete repository (-> 401)": [f"DELETE /acr/v1/{a} 401"],
        "uploadBlob (-> 401)": [f"POST /v2/{a}/blobs/uploads/ 401"],
        "setManifest (-> 401)": [f"PUT /v2/{a}/manifests/anon 401"],
        "deleteManifest (-> 401)": [f"DELETE /v2/{a}/manifests/{D} 401"],
        "deleteBlob (-> 401)": [f"DELETE /v2/{a}/blobs/{D} 401"],
        "getManifest (still there)": [f"GET /v2/{a}/manifests/v1 200"],
    }


MODES = {
    "credential": ({}, _expected_full),
    "anonymous": ({}, _expected_full),
    "anonymous-pull": ({"anonymous_actions": ("pull", "metadata_read")}, _expected_anonymous_pull),
}


def public_methods() -> dict[str, set[str]]:
    """`Type.method` for every public method the package's .d.ts declares on SURFACE."""
    types_dir = JS_DIR / "node_modules" / PACKAGE / "dist" / "commonjs"
    found: dict[str, set[str]] = {}
    for type_name, file in SURFACE.items():
        text = (types_dir / file).read_text()
        block = re.search(
            rf"^export (?:declare class|interface) {type_name}\b[^\n]*\n(.*?)^\}}",
            text,
            re.DOTALL | re.MULTILINE,
        )
        assert block is not None, f"{type_name} not declared in {file}"
        names = set(re.findall(r"^ {4}(\w+)\(", block.group(1), re.MULTILINE)) - {"constructor"}
        found[type_name] = names
    return found


@pytest.fixture(scope="module")
def node() -> str:
    path, version = require_node_package(PACKAGE)
    assert version.startswith("1.1."), f"{PACKAGE} {version}: this suite pins 1.1.x"
    return path


def _run_driver(node: str, acr: Emulator, mode: str, prefix: str, tmp: Path) -> dict[str, Any]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        "NODE_EXTRA_CA_CERTS": acr.ca_bundle,
        "NO_PROXY": "127.0.0.1,localhost",
        "ACR_ENDPOINT": acr.endpoint,
        "JS_MODE": mode,
        "JS_PREFIX": prefix,
    }
    done = subprocess.run(
        [node, str(JS_DIR / "drive.mjs")],
        cwd=JS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, (
        f"node drive.mjs ({mode}) exited {done.returncode}:\n" + (done.stderr[-4000:])
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _line(entry: dict[str, Any]) -> str:
    query = {
        k: v
        for k, v in entry["query"].items()
        if k not in {"api-version", "_state", "_nouploadcache"}
    }
    rendered = "&".join(f"{k}={v}" for k, v in sorted(query.items()))
    return (
        f"{entry['method']} {entry['path']}{'?' + rendered if rendered else ''} {entry['status']}"
    )


def _registry_requests(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Leave out the token flow, redirect targets (paths outside /v2 and /acr, or whatever the
    request after a 307 fetched) and each 401 the SDK answered by fetching a token and sending
    the same request again (a challenge)."""
    registry: list[dict[str, Any]] = []
    redirected = False
    for entry in entries:
        if redirected and entry["method"] == "GET":
            redirected = False
            continue  # the redirect target (a storage URL on real ACR)
        if entry["path"].startswith(("/v2/", "/acr/")):
            registry.append(entry)
            redirected = entry["status"] == 307
    return [
        entry
        for entry, following in zip(registry, [*registry[1:], None], strict=False)
        if not (
            entry["status"] == 401
            and following is not None
            and (following["method"], following["path"]) == (entry["method"], entry["path"])
        )
    ]


@pytest.fixture(scope="module", params=list(MODES))
def js_run(
    request: pytest.FixtureRequest, node: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Emulator, dict[str, Any], str]]:
    mode = request.param
    emulator_kwargs, _ = MODES[mode]
    prefix = f"js-{mode}-{secrets.token_hex(3)}"
    with Emulator(**emulator_kwargs) as acr:
        result = _run_driver(node, acr, mode, prefix, tmp_path_factory.mktemp(mode))
        yield mode, acr, result, prefix


def test_every_method_against_the_emulator(
    js_run: tuple[str, Emulator, dict[str, Any], str],
) -> None:
    mode, acr, result, prefix = js_run
    log = acr.requests()
    _, expected_for = MODES[mode]
    expected = {
        name: [p.replace("{prefix}", prefix) for p in lines]
        for name, lines in expected_for().items()
    }

    failures: list[str] = []
    rows: list[tuple[str, str, str, int, int]] = []
    assert [step["name"] for step in result["steps"]] == list(expected), "driver steps changed"
    for step in result["steps"]:
        start, end = step["log"]
        entries = log[start:end]
        seen = [_line(e) for e in _registry_requests(entries)]
        want = expected[step["name"]]
        if not step["ok"]:
            failures.append(f"{step['name']}: {step['error']}")
        elif len(seen) != len(want) or not all(
            re.fullmatch(p, s) for p, s in zip(want, seen, strict=True)
        ):
            failures.append(f"{step['name']}: requests\n    {seen}\n  expected\n    {want}")
        auth = len(entries) - len(seen)
        rows.append((step["method"], step["name"], "ok" if step["ok"] else "FAIL", len(seen), auth))

    # The token flow itself: credential mode exchanges an AAD token, anonymous never does.
    exchanges = [e for e in log if e["path"] == "/oauth2/exchange"]
    tokens = [e for e in log if e["path"] == "/oauth2/token"]
    assert all(e["status"] == 200 for e in exchanges + tokens), "a token request was refused"
    if mode == "anonymous":
        assert not exchanges
        assert result["getTokenCalls"] == 0
    else:
        assert exchanges, "the TokenCredential's AAD token was never exchanged"
        assert result["getTokenCalls"] >= 1
        # The SDK's default audience (ContainerRegistryClientOptions.audience).
        assert result["getTokenScopes"] == ["https://containerregistry.azure.net/.default"]

    print(f"\nJS SDK {PACKAGE} {result['sdkVersion']} (node {result['node']}), mode {mode}:")
    print("  reqs: registry requests; auth: 401 challenges answered by a token, and /oauth2 calls")
    print(f"  {'method':<48} {'step':<66} {'ok':<4} {'reqs':>4} {'auth':>4}")
    for method, name, ok, reqs, auth in rows:
        print(f"  {method:<48} {name[:66]:<66} {ok:<4} {reqs:>4} {auth:>4}")
    per_method: dict[str, list[int]] = {}
    for method, _, _, reqs, auth in rows:
        calls = per_method.setdefault(method, [0, 0, 0])
        calls[0] += 1
        calls[1] += reqs
        calls[2] += auth
    print(f"  {'per method':<48} {'calls':>5} {'reqs':>4} {'auth':>4}")
    for method, (calls_n, reqs_n, auth_n) in sorted(per_method.items()):
        print(f"  {method:<48} {calls_n:>5} {reqs_n:>4} {auth_n:>4}")
    passed = sum(1 for r in rows if r[2] == "ok")
    print(
        f"  {passed}/{len(rows)} steps passed; {len(log)} requests, "
        f"{len(tokens) + len(exchanges)} of them to /oauth2"
    )
    assert not failures, "\n".join(failures)


def test_every_public_method_is_driven(js_run: tuple[str, Emulator, dict[str, Any], str]) -> None:
    """Every public method the package declares succeeds at least once in the full runs."""
    mode, _, result, _ = js_run
    declared = {f"{t}.{m}" for t, methods in public_methods().items() for m in methods}
    driven = Counter(step["method"] for step in result["steps"] if step["ok"])
    assert set(driven) - {"setup"} <= declared, "the driver names a method the .d.ts lacks"
    if mode != "anonymous-pull":  # that run only checks reads work and writes are refused
        missing = declared - set(driven)
        assert not missing, f"public methods not driven in {mode} mode: {sorted(missing)}"
    covered = len(set(driven) & declared)
    print(f"\n{mode}: {covered}/{len(declared)} public methods, {sum(driven.values())} calls")
