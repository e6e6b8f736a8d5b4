"""`retag.acr.errors`: SDK / azure-core exceptions -> `retag.registry` errors, one line each.

Statuses and codes as ACR sends them, injected by the emulator and raised by the real SDK:
401 `ClientAuthenticationError`, 404 `ResourceNotFoundError`, 409 `ResourceExistsError`, the rest
`HttpResponseError` with the ACR code in `e.model.errors[0].code` (design.md §1, checked against
azure-containerregistry 1.2.0); a write to a locked artifact answers 405 (Azure/acr-cli issue #70,
design.md §3). Roles come from the one role table, `retag.registry.required_role`.
"""

from __future__ import annotations

import pytest

from emulator import Emulator
from retag.acr.client import AcrRegistry
from retag.acr.errors import map_exception
from retag.acr.wire import WireError
from retag.registry import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RegistryError,
    TransientRegistryError,
    required_role,
)
from tests.support import images


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        (400, RegistryError, "HTTP 400"),
        (403, PermissionDeniedError, "AcrPull"),
        (404, NotFoundError, "not found"),
        (405, ConflictError, "locked"),
        (409, ConflictError, "conflict"),
        (429, TransientRegistryError, "HTTP 429"),
        (503, TransientRegistryError, "HTTP 503"),
    ],
)
def test_status_maps_to_one_error_naming_action_target_and_registry(
    acr: Emulator,
    warm: tuple[AcrRegistry, images.Image],
    repo: str,
    status: int,
    error: type,
    words: str,
) -> None:
    acr.set_faults(error_rate=1.0, error_status=status)
    with pytest.raises(error) as caught:
        warm[0].get_tag(repo, "latest")
    message = str(caught.value)
    assert type(caught.value) is error  # not a subclass either: transient only when it is
    assert words in message
    assert message.startswith(f"metadata_read {repo}:latest on {acr.login_server}: ")
    assert "\n" not in message


def test_exhausted_retries_say_how_many_attempts(
    acr: Emulator, warm: tuple[AcrRegistry, images.Image], repo: str
) -> None:
    acr.set_faults(error_rate=1.0, error_status=502)
    with pytest.raises(TransientRegistryError, match=r"HTTP 502.*gave up after 4 attempts"):
        warm[0].get_tag(repo, "latest")


def test_a_malformed_answer_is_a_permanent_error_naming_the_call() -> None:
    error = map_exception(
        WireError("'tags' in the listing is not a list"), "metadata_read", "a/b", "r.io"
    )
    assert type(error) is RegistryError
    assert str(error) == "metadata_read a/b on r.io: 'tags' in the listing is not a list"


def test_delete_permission_names_acr_delete(
    acr: Emulator, warm: tuple[AcrRegistry, images.Image], repo: str
) -> None:
    acr.set_faults(error_rate=1.0, error_status=403)
    with pytest.raises(PermissionDeniedError, match="AcrDelete"):
        warm[0].delete_tag(repo, "latest")


# -- roles ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "role"),
    [
        ("pull", "AcrPull"),
        ("metadata_read", "AcrPull"),
        ("repository:app:pull", "AcrPull"),
        ("push", "AcrPush"),
        ("repository:app:pull,push", "AcrPush"),
        ("metadata_write", "AcrPush"),
        ("delete", "AcrDelete"),
        ("repository:app:delete", "AcrDelete"),
        ("registry:catalog:*", "Catalog Lister"),
        ("catalog", "Catalog Lister"),
    ],
)
def test_required_role(action: str, role: str) -> None:
    assert role in required_role(action)


def test_405_unsupported_is_not_a_lock(acr: Emulator, registry: AcrRegistry, repo: str) -> None:
    """ACR answers DELETE /v2/<repo>/manifests/<tag> with 405 `UNSUPPORTED` "A manifest can only
    be deleted by digest." (tests/fidelity pins the emulator to it): a refused operation, not a
    locked artifact, so the error must not say "locked". Sent through the adapter's own pipeline
    (its transport: token flow included), mapped as every adapter call is."""
    from azure.core.rest import HttpRequest

    from retag.acr.errors import http_error

    images.push_image(acr.endpoint, repo, images.oci_image(), tag="v1", verify=acr.ca_bundle)
    response = registry._raw.send_request(
        HttpRequest("DELETE", f"{acr.endpoint}/v2/{repo}/manifests/v1")
    )
    assert response.status_code == 405
    result = map_exception(http_error(response), "delete", f"{repo}:v1", acr.login_server)
    assert type(result) is RegistryError
    assert "UNSUPPORTED" in str(result)
    assert "locked" not in str(result)
