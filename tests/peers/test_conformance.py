"""The OCI distribution-spec conformance suite against the emulator.

Source: github.com/opencontainers/distribution-spec/conformance at
v0.0.0-20260831232431-97274622c111 (its README and config.go: settings, report files). Pull,
push, content discovery (tag listing, referrers) and content management (tag, manifest and blob
deletes) are enabled. How it authenticates (api.go `getAuthHeader`): on a 401 with a Bearer
challenge it sends `GET <realm>?service=<service>&scope=<challenge scope>` with Basic auth
(OCI_USERNAME:OCI_PASSWORD) and reads `token` or `access_token`: the docker token protocol,
which ACR serves for `docker login` with the null-GUID user and a refresh token as password.

Every failure is either fixed in the emulator or listed in
`tests.differential.differences.CONFORMANCE_EXPECTED_FAILURES` with its reason; an unlisted
failure, or a pass of a listed case, fails this test. The per-area table is printed (`-s`).
"""

from __future__ import annotations

from pathlib import Path

from emulator import Emulator
from tests.differential.differences import CONFORMANCE_EXPECTED_FAILURES
from tests.peers.conformance import explain, judge, run_suite, summary_table
from tests.peers.conftest import NULL_GUID_USER, refresh_token


def test_conformance_suite(conformance_binary: Path, acr: Emulator, tmp_path: Path) -> None:
    acr.clear_requests()
    settings = {
        "OCI_REGISTRY": acr.login_server,
        "OCI_TLS": "enabled",
        "SSL_CERT_FILE": acr.ca_bundle,  # Go's crypto/x509 reads it on Linux
        "OCI_REPO1": "conformance/repo1",
        "OCI_REPO2": "conformance/repo2",
        "OCI_USERNAME": NULL_GUID_USER,
        "OCI_PASSWORD": refresh_token(acr),
        "OCI_VERSION": "1.1",
        "OCI_LOG": "warn",
        # pull, push, content discovery, content management
        "OCI_API_PULL": "true",
        "OCI_API_PUSH": "true",
        "OCI_API_TAGS_LIST": "true",
        "OCI_API_REFERRER": "true",
        "OCI_API_TAGS_DELETE": "true",
        "OCI_API_MANIFESTS_DELETE": "true",
        "OCI_API_BLOBS_DELETE": "true",
    }
    cases, done = run_suite(conformance_binary, tmp_path, settings)
    verdict = judge(cases, CONFORMANCE_EXPECTED_FAILURES)

    print(f"\nOCI conformance suite against the emulator ({len(cases)} cases):")
    print(summary_table(cases, verdict))
    for index, entry in enumerate(CONFORMANCE_EXPECTED_FAILURES):
        print(f"expected failures {verdict.expected[index]:>4}  {entry.pattern.pattern}")

    assert len(cases) > 600, f"the suite ran too few cases:\n{done.stdout[-2000:]}"
    assert sum(c.status == "passed" for c in cases) > 500
    assert verdict.ok, explain(verdict)

    # It authenticated the way docker clients do against ACR: GET /oauth2/token, no 401 there.
    log = acr.requests()
    token_calls = [r for r in log if r["path"] == "/oauth2/token"]
    assert token_calls
    assert all(r["method"] == "GET" for r in token_calls)
    assert all(r["status"] == 200 for r in token_calls)
    assert not [r for r in log if r["path"] == "/oauth2/exchange" and r["status"] != 200]
