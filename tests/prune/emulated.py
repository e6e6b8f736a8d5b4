"""Seeding and inspecting the emulator for prune integration tests.

The seeder pushes real images over /v2 (tests/support/images.py) at chosen emulator-clock times,
so tags and manifests get realistic `createdTime`/`lastUpdateTime`, and sets locks with the ACR
`PATCH` attribute API (`changeableAttributes`), as `az acr repository update` does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from emulator import Emulator
from retag.naming import TagTemplate
from tests.support.images import Image, V2Session, docker_image, push_image

TEMPLATE = TagTemplate.parse("{tag}_{timestamp}_{digest:.12}", ["latest"])
REAL_NOW = datetime.now(UTC).replace(microsecond=0)


class Seeder:
    def __init__(self, acr: Emulator) -> None:
        self.acr = acr
        self.session = V2Session(acr.endpoint, verify=acr.ca_bundle)
        self._seed = 0

    def at(self, when: datetime) -> None:
        self.acr.set_clock(when)

    def ago(self, **delta: float) -> datetime:
        return REAL_NOW - timedelta(**delta)

    def image(self) -> Image:
        self._seed += 1
        return docker_image(seed=self._seed, layer_size=64)

    def push(self, repository: str, image: Image, tag: str | None = None, *, at: datetime) -> str:
        self.at(at)
        return push_image(
            self.acr.endpoint,
            repository,
            image,
            tag,
            verify=self.acr.ca_bundle,
            session=self.session,
        )

    def tag(self, repository: str, image: Image, tag: str, *, at: datetime) -> None:
        self.at(at)
        response = self.session.put_manifest(repository, tag, image.raw, image.media_type)
        assert response.status_code == 201, response.text

    def generated(
        self, repository: str, *, at: datetime, source: str = "latest"
    ) -> tuple[str, Image]:
        """Push a fresh image under the tag the template generates; returns (tag, image)."""
        image = self.image()
        name = TEMPLATE.render(source, at, image.digest)
        self.push(repository, image, name, at=at)
        return name, image

    def generated_on_one_image(
        self, repository: str, count: int, *, days: float = 30
    ) -> tuple[list[str], Image]:
        """One image with `count` old generated tags (one per minute, oldest first)."""
        image = self.image()
        self.push(repository, image, None, at=self.ago(days=days, minutes=count + 1))
        names = []
        for i in range(count):
            when = self.ago(days=days, minutes=count - i)
            names.append(TEMPLATE.render("latest", when, image.digest))
            self.tag(repository, image, names[-1], at=when)
        return names, image

    def patch(self, path: str, **attributes: bool) -> None:
        response = self.session.request("PATCH", path, json=attributes)
        assert response.status_code == 200, response.text

    def lock_tag(self, repository: str, tag: str, **attributes: bool) -> None:
        self.patch(f"/acr/v1/{repository}/_tags/{tag}", **(attributes or {"deleteEnabled": False}))

    def lock_manifest(self, repository: str, digest: str, **attributes: bool) -> None:
        self.patch(
            f"/acr/v1/{repository}/_manifests/{digest}", **(attributes or {"writeEnabled": False})
        )

    def now(self) -> None:
        """Back to real time (plus nothing): what the prune run measures ages against."""
        self.at(REAL_NOW)

    def close(self) -> None:
        self.session.close()


def deletes(acr: Emulator, *, accepted_only: bool = True) -> list[dict[str, Any]]:
    """DELETE requests the emulator logged (by default only those it accepted: 202)."""
    return [
        r
        for r in acr.requests()
        if r["method"] == "DELETE" and (not accepted_only or r["status"] == 202)
    ]


def tags_of(acr: Emulator, repository: str) -> dict[str, str]:
    store = acr.registry.store
    return {
        t["name"]: t["digest"]
        for t in store.list_tags(repository, "10000", None, None, None)[0]["tags"]
    }


def manifests_of(acr: Emulator, repository: str) -> set[str]:
    store = acr.registry.store
    return {
        m["digest"] for m in store.list_manifests(repository, "10000", None, None)[0]["manifests"]
    }
