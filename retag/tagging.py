"""The one add-a-generated-tag engine: the event path, the CLI `tag` and reconciliation all write
through `add_generated_tag`.

GET the manifest by digest, PUT the same bytes under the new tag, verify the digest.
"""

from __future__ import annotations

from retag.oci import digest_problem, repository_problem, tag_problem
from retag.registry import ConflictError, NotFoundError, Registry, RegistryError


def add_generated_tag(
    registry: Registry, repository: str, digest: str, new_tag: str, *, check_existing: bool
) -> str:
    """Point `new_tag` at manifest `digest` without moving any layer; returns `new_tag`.

    GET the manifest BY DIGEST (the source tag may already point elsewhere), PUT its exact bytes
    with its original media type under `new_tag`, and verify the registry computed the same digest
    (a mismatch raises RegistryError). Steady state: exactly these 2 requests.

    `check_existing=True` first reads `new_tag`: when it already points to `digest` the work is
    done (no write); when it points to another digest ConflictError is raised: we never move a tag
    we did not create for this digest. Callers pass `TagTemplate.needs_existing_check`: with
    {timestamp} and >= 12 digest hex characters a same-named tag on another digest would need a
    48-bit digest-prefix collision pushed in the same second to the same repository, so the read
    is skipped and a re-tag stays at 2 requests. A locked existing tag still makes the PUT fail
    (ConflictError), and re-PUTting the same digest under the same tag is a no-op, so redelivered
    events stay idempotent either way.

    Raises ValueError for invalid arguments (nothing is sent), NotFoundError when the manifest is
    gone, ConflictError, PermissionDeniedError, TransientRegistryError, RegistryError.
    """
    for what, problem in (
        ("repository", repository_problem(repository)),
        ("digest", digest_problem(digest)),
        ("new tag", tag_problem(new_tag)),
    ):
        if problem is not None:
            raise ValueError(f"{what} {problem}")

    if check_existing:
        try:
            existing = registry.get_tag(repository, new_tag)
        except NotFoundError:
            pass
        else:
            if existing.digest == digest:
                return new_tag
            raise ConflictError(
                f"tag {new_tag} already exists on {existing.digest}; not overwriting it"
            )

    manifest = registry.get_manifest(repository, digest)
    if manifest.digest != digest:
        raise RegistryError(f"registry returned manifest {manifest.digest} when asked for {digest}")
    written = registry.put_manifest(repository, manifest, new_tag)
    if written != digest:
        raise RegistryError(
            f"tag {new_tag} was written with digest {written}, expected {digest} "
            "(the manifest bytes were not preserved)"
        )
    return new_tag
