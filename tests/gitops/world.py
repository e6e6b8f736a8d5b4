"""One repository as a user sees it: pushes through /v2, the events the emulator emitted for them,
the Function behind the Functions host stand-in, the CLI, the timers; and the GitOps invariant
checked with the Flux model (tests/gitops/flux.py) over what the real SDK lists.

Events are never delivered by the emulator's own Event Grid here (no subscriber): the test holds
each ImagePushed event the emulator emitted for a push and decides when, how often and in which
order the host gets it, which is how Event Grid's at-least-once, unordered delivery is modelled.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from azure.containerregistry import ContainerRegistryClient

from emulator import Emulator
from emulator.clock import format_time, parse_time
from retag.naming import TagTemplate
from tests.gitops.flux import ImagePolicy, PolicyError
from tests.support.function_app import LoadedApp, emulator_settings
from tests.support.images import Image, push_image

SOURCE = "latest"
POLICY = ImagePolicy.documented()
IMAGE_PUSHED = "Microsoft.ContainerRegistry.ImagePushed"


def observer(acr: Emulator) -> ContainerRegistryClient:
    """The test's own eyes: the real SDK, anonymous, not the product's adapter."""
    return ContainerRegistryClient(
        acr.endpoint, None, audience="https://management.azure.com", connection_verify=acr.ca_bundle
    )


@dataclass
class World:
    acr: Emulator
    app: LoadedApp
    repository: str
    sdk: ContainerRegistryClient
    template: TagTemplate = field(
        default_factory=lambda: TagTemplate.parse("{tag}_{timestamp:ms}_{digest:.12}", [SOURCE])
    )

    # -- acting ---------------------------------------------------------------------------------

    def push(self, image: Image, *, base_url: str | None = None) -> dict[str, Any]:
        """Push `image` as `latest`; return (a copy of) the ImagePushed event emitted for it."""
        before = len(self.acr.events())
        push_image(
            base_url or self.acr.endpoint, self.repository, image, SOURCE, verify=self.acr.ca_bundle
        )
        emitted = [
            e
            for e in self.acr.events()[before:]
            if e["eventType"] == IMAGE_PUSHED
            and e["data"]["target"].get("repository") == self.repository
            and e["data"]["target"].get("tag") == SOURCE
            and e["data"]["target"]["digest"] == image.digest
        ]
        assert len(emitted) == 1, emitted
        return copy.deepcopy(emitted[0])

    def deliver(self, *events: Mapping[str, Any]) -> None:
        """One Event Grid POST to the host; the host must answer 200 (nothing to redeliver)."""
        result = self.app.deliver(json.dumps(list(events)).encode())
        assert result.status == 200, (result.status, result.invocations)

    def cli_tag(self) -> int:
        """`python -m retag tag REPO` as a pipeline step runs it (in-process, like tests/cli)."""
        from retag.cli.main import main

        return main(["tag", self.repository], env=emulator_settings(self.acr))

    def reconcile_timer(self) -> None:
        invocation = self.app.host.run_timer("reconcile_tags")
        assert invocation.ok, invocation

    def prune_timer(self) -> None:
        invocation = self.app.host.run_timer("prune_tags")
        assert invocation.ok, invocation

    # -- looking --------------------------------------------------------------------------------

    def tags(self) -> dict[str, str]:
        """{tag: digest} as the real SDK lists them."""
        return {t.name: t.digest for t in self.sdk.list_tag_properties(self.repository)}

    def generated(self, tags: Mapping[str, str] | None = None) -> dict[str, str]:
        tags = self.tags() if tags is None else tags
        return {n: d for n, d in tags.items() if self.template.is_generated(n, SOURCE)}

    def selected(self, tags: Mapping[str, str] | None = None) -> tuple[str, str]:
        """(tag, digest) Flux selects under the ImagePolicy of docs/flux.md."""
        return POLICY.select_digest(self.tags() if tags is None else tags)

    def assert_invariant(self) -> tuple[str, str]:
        """The promise: the tag Flux selects points to the digest `latest` points to."""
        tags = self.tags()
        try:
            tag, digest = self.selected(tags)
        except PolicyError as error:
            raise AssertionError(f"Flux selects nothing: {error}; tags {tags}") from None
        assert digest == tags[SOURCE], (
            f"Flux selects {tag} -> {digest[:19]}, but {SOURCE} -> {tags[SOURCE][:19]}; "
            f"generated: {self.generated(tags)}"
        )
        return tag, digest

    def mark(self) -> int:
        return len(self.acr.requests())

    def written(self, since: int) -> list[dict[str, Any]]:
        """The manifest PUTs that succeeded since `mark()` (a first PUT may meet a 401)."""
        return [r for r in self.manifest_puts(since) if 200 <= r["status"] < 300]

    def manifest_puts(self, since: int) -> list[dict[str, Any]]:
        """Manifest PUTs (any answer) in this repository since `mark()` (the emulator's request
        log): an empty list means nothing was even attempted."""
        prefix = f"/v2/{self.repository}/manifests/"
        return [
            r
            for r in self.acr.requests()[since:]
            if r["method"] == "PUT" and r["path"].startswith(prefix)
        ]


def replica_copy(event: Mapping[str, Any], *, later: timedelta, region: str) -> dict[str, Any]:
    """The same push as a geo-replica reports it: a new event id, a later timestamp, the
    replica's region. ACR: "a single push results in events from the receiving geo-replica plus
    events from each geo-replica as replication completes" (Learn, container-registry-webhook,
    quoted in /work/shared/design.md section 4; assumed for Event Grid too)."""
    copied = copy.deepcopy(dict(event))
    copied["id"] = copied["data"]["id"] = str(uuid.uuid4())
    stamp = format_time(parse_time(copied["data"]["timestamp"]) + later)
    copied["eventTime"] = copied["data"]["timestamp"] = stamp
    copied["data"]["location"] = region
    return copied


def pushed_at(event: Mapping[str, Any]) -> datetime:
    return parse_time(event["data"]["timestamp"])


@contextmanager
def fresh_repository(acr: Emulator, sdk: ContainerRegistryClient, name: str) -> Iterator[str]:
    """A repository name no other example used; deleted afterwards so catalog-wide timers stay
    small."""
    repository = f"gitops/{name}-{uuid.uuid4().hex[:8]}"
    try:
        yield repository
    finally:
        sdk.delete_repository(repository)
