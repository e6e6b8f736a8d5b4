"""Blob downloads redirected to storage, Event Grid event shapes, and the paging decision."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qs, urlsplit

import requests

from emulator import Emulator
from tests.emulator.conftest import ClientFactory
from tests.emulator.helpers import StaticTokenCredential, push, raw, unique_repo
from tests.support import images


def test_blob_get_redirects_to_storage(acr: Emulator) -> None:
    """Go SDK recording TestBlobClient_GetBlob.json (2022-12-14): the blob GET's final answer
    comes from storage (`Server: Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0`, `x-ms-blob-type`,
    `Accept-Ranges: bytes`, no Docker-Content-Digest) at a signed URL on
    `*.blob.core.windows.net` whose query carries sv, sr=b, se, sp=r (x-ms-copy-source);
    design.md section 4: ACR answers 307 to storage (Learn, container registry endpoints)."""
    repo = unique_repo("fact-redirect")
    image = images.oci_image(seed=130, layer_size=4096)
    push(acr, repo, image, "v1")
    layer = image.blobs[-1]
    path = f"/v2/{repo}/blobs/{layer.digest}"
    redirect = raw(acr, "GET", path, scope=f"repository:{repo}:pull", allow_redirects=False)
    assert redirect.status_code == 307
    location = redirect.headers["Location"]
    parts = urlsplit(location)
    assert parts.scheme == "https"
    assert parts.hostname == "localhost"  # another host than the registry's 127.0.0.1
    assert parts.port != int(acr.login_server.split(":")[1])
    query = parse_qs(parts.query)
    assert {"sv", "sr", "se", "sp", "sig"} <= set(query)
    assert (query["sr"], query["sp"]) == (["b"], ["r"])
    stored = requests.get(location, verify=acr.ca_bundle, timeout=10)
    assert stored.status_code == 200
    assert stored.content == layer.data
    assert stored.headers["Server"] == "Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0"
    assert stored.headers["x-ms-blob-type"] == "BlockBlob"
    assert "Docker-Content-Digest" not in stored.headers
    ranged = requests.get(
        location, headers={"Range": "bytes=0-9"}, verify=acr.ca_bundle, timeout=10
    )
    assert (ranged.status_code, ranged.content) == (206, layer.data[:10])
    assert ranged.headers["Content-Range"] == f"bytes 0-9/{layer.size}"
    unsigned = location.split("&sig=")[0]
    assert requests.get(unsigned, verify=acr.ca_bundle, timeout=10).status_code == 403


def test_storage_refuses_the_registry_token(acr: Emulator) -> None:
    """Issue 13 item 6: the redirect target must not receive the registry's bearer token. The
    emulator's storage refuses (403, AuthenticationFailed) and flags such a request in the log
    (ACR_DIFFERENCES storage.refuses_authorization)."""
    repo = unique_repo("fact-leak")
    image = images.oci_image(seed=131)
    push(acr, repo, image, "v1")
    layer = image.blobs[-1]
    redirect = raw(
        acr,
        "GET",
        f"/v2/{repo}/blobs/{layer.digest}",
        scope=f"repository:{repo}:pull",
        allow_redirects=False,
    )
    leaked = requests.get(
        redirect.headers["Location"],
        headers={"Authorization": "Bearer registry-token"},
        verify=acr.ca_bundle,
        timeout=10,
    )
    assert leaked.status_code == 403
    assert b"AuthenticationFailed" in leaked.content
    entry = [r for r in acr.requests() if r.get("endpoint") == "storage"][-1]
    assert entry["authorization"] is True
    assert entry["status"] == 403
    assert entry["query"]["sig"] == "***"


def test_python_sdk_download_blob_never_sends_the_token_to_storage(
    acr: Emulator, make_client: ClientFactory
) -> None:
    """The real azure-containerregistry 1.2 `download_blob` (on `ContainerRegistryClient` in
    1.2; `ContainerRegistryContentClient` in other releases), with the credential flow (AAD token
    -> refresh -> access token), follows the 307; azure-core's RedirectPolicy drops
    `Authorization`, so storage sees no registry token (issue 13 item 6)."""
    repo = unique_repo("fact-sdkblob")
    image = images.oci_image(seed=132, layer_size=8192)
    push(acr, repo, image, "v1")
    layer = image.blobs[-1]
    acr.clear_requests()
    client = make_client(StaticTokenCredential())
    data = b"".join(client.download_blob(repo, layer.digest))
    assert hashlib.sha256(data).hexdigest() == layer.digest.split(":", 1)[1]
    log = acr.requests()
    registry = [r for r in log if r.get("endpoint") != "storage" and "/blobs/" in r["path"]]
    storage = [r for r in log if r.get("endpoint") == "storage"]
    assert [r["status"] for r in registry][-1] == 307
    assert storage, "the SDK did not reach the storage endpoint"
    assert all(r["authorization"] is False for r in storage)
    assert all(r["status"] in (200, 206) for r in storage)


def test_no_blob_redirect_knob(make_client: ClientFactory) -> None:
    """`Emulator(blob_redirect=False)` (`--no-blob-redirect`) serves blobs from the registry:
    a local convenience for clients that cannot follow redirects (ACR_DIFFERENCES
    storage.endpoint)."""
    with Emulator(blob_redirect=False) as direct:
        assert direct.storage_endpoint is None
        repo = unique_repo("fact-direct")
        image = images.oci_image(seed=133)
        push(direct, repo, image, "v1")
        layer = image.blobs[-1]
        answer = raw(
            direct,
            "GET",
            f"/v2/{repo}/blobs/{layer.digest}",
            scope=f"repository:{repo}:pull",
            allow_redirects=False,
        )
        assert (answer.status_code, answer.content) == (200, layer.data)


def test_image_pushed_event_shape(acr: Emulator) -> None:
    """azure-rest-api-specs specification/eventgrid/data-plane/Microsoft.ContainerRegistry/
    stable/2018-01-01/examples/event-grid-schema/image_pushed.json: subject "<repo>:<tag>",
    dataVersion "2.0", metadataVersion "1", data {id, timestamp, action "push", location (a
    region, "westus"), target {mediaType, size, digest, length, repository, tag}, request {id,
    host, method "PUT", useragent}}; eventTime later than data.timestamp (45.468 -> 45.661)."""
    repo = unique_repo("fact-pushed")
    image = images.oci_image(seed=134)
    acr.clear_events()
    push(acr, repo, image, "latest")
    (event,) = [e for e in acr.events() if e["data"]["target"]["repository"] == repo]
    assert event["subject"] == f"{repo}:latest"
    assert event["eventType"] == "Microsoft.ContainerRegistry.ImagePushed"
    assert (event["dataVersion"], event["metadataVersion"]) == ("2.0", "1")
    data = event["data"]
    assert (data["action"], data["location"]) == ("push", "westus")
    assert list(data["target"]) == ["mediaType", "size", "digest", "length", "repository", "tag"]
    assert list(data["request"]) == ["id", "host", "method", "useragent"]
    assert data["request"]["method"] == "PUT"
    assert event["eventTime"][:26] > data["timestamp"][:26]


def test_image_deleted_event_shape(acr: Emulator) -> None:
    """azure-rest-api-specs specification/eventgrid/data-plane/Microsoft.ContainerRegistry/
    stable/2018-01-01/examples/event-grid-schema/image_deleted.json: subject "samples/nginx"
    (the repository alone), dataVersion "2.0", data.location "westus", target {mediaType,
    digest, repository} (no size, length, tag), request method "DELETE", eventTime
    (40.5342401Z) later than data.timestamp (40.1850248Z)."""
    repo = unique_repo("fact-deleted")
    image = images.oci_image(seed=135)
    push(acr, repo, image, "v1")
    acr.clear_events()
    deleted = raw(
        acr, "DELETE", f"/v2/{repo}/manifests/{image.digest}", scope=f"repository:{repo}:delete"
    )
    assert deleted.status_code == 202
    (event,) = acr.events()
    assert event["subject"] == repo
    assert event["eventType"] == "Microsoft.ContainerRegistry.ImageDeleted"
    assert event["dataVersion"] == "2.0"
    data = event["data"]
    assert (data["action"], data["location"]) == ("delete", "westus")
    assert data["target"] == {
        "mediaType": image.media_type,
        "digest": image.digest,
        "repository": repo,
    }
    assert data["request"]["method"] == "DELETE"
    assert event["eventTime"][:26] > data["timestamp"][:26]


def test_event_timestamp_digits(acr: Emulator) -> None:
    """Learn, "Azure Container Registry as an Event Grid source" (event-schema-container-registry):
    the example has data.timestamp "2018-04-25T21:39:47.276585742Z" (9 fractional digits) and
    time "2018-04-25T21:39:47.6549614Z" (7 digits)."""
    repo = unique_repo("fact-digits")
    acr.clear_events()
    push(acr, repo, images.oci_image(seed=136), "v1")
    (event,) = acr.events()
    stamp, published = event["data"]["timestamp"], event["eventTime"]
    assert len(stamp.rsplit(".", 1)[1]) == len("276585742Z")
    assert len(published.rsplit(".", 1)[1]) == len("6549614Z")


def test_time_paging_survives_deleting_the_last_tag(
    acr: Emulator, make_client: ClientFactory
) -> None:
    """Issue 13 item 10, a decision (ACR_DIFFERENCES paging.time_order_after_deleted_last): no
    recording shows ACR paging by orderby=timedesc after the page's `last` tag was deleted. The
    emulator resumes where that tag was: a pruner deleting as it pages sees every tag once, no
    loop, no survivor skipped. Driven with the real SDK's pager (it follows the Link)."""
    client = make_client()
    repo = unique_repo("fact-paging")
    image = images.oci_image(seed=137)
    push(acr, repo, image, "t00")
    for i in range(1, 12):
        acr.advance_clock(1)
        raw(
            acr,
            "PUT",
            f"/v2/{repo}/manifests/t{i:02d}",
            scope=f"repository:{repo}:pull,push",
            data=image.raw,
            headers={"Content-Type": image.media_type},
        ).raise_for_status()
    seen: list[str] = []
    pages = client.list_tag_properties(repo, order_by="timedesc", results_per_page=3).by_page()
    for page in pages:
        names = [t.name for t in page]
        seen.extend(names)
        for name in names:
            if int(name[1:]) % 2 == 0:  # delete as we go, the page's last tag included
                client.delete_tag(repo, name)
        assert len(seen) <= 12, "paging restarted (a loop)"
    assert seen == [f"t{i:02d}" for i in range(11, -1, -1)]
