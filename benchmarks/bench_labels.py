"""Label fields' and the nudge's cost (issue 14 items 1, 2): requests and latency per re-tag
`{revision}` in RETAG_TAG_TEMPLATE, on the emulator at 20 ms injected latency per request.

- default template `{tag}_{timestamp:ms}_{digest:.12}`: tags on the digest || manifest, PUT;
- `prod-{revision:.7}-{timestamp}` (HMCTS's shape), an OCI image: + the config blob (the
  registry's 307 and the storage GET), + the existence check (no `{digest}`: a same-named tag
  could exist, so it is read before the PUT);
- the same for an OCI index: + the first platform manifest's GET;
- `prod-{revision:.7}-{timestamp}-{digest:.12}`: unique names, so no existence check;
- a redelivery of a labelled push on a new instance (empty memories): the decision needs no
  label, so no config read;
- the default template plus the Flux nudge (`retag.announce`) to a local generic-hmac Receiver:
  no registry request, one POST (its latency is in the row).

Requests are counted from the emulator's request log (storage included, token calls excluded:
the adapter is warm).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from benchmarks.common import counted, median, percentile, report, table
from emulator import Emulator
from retag.acr.client import AcrRegistry
from retag.naming import DEFAULT_TEMPLATE, REVISION_LABEL, TagTemplate
from retag.tagging import _LABELS, _RECENT, Push, tag_push
from tests.support.images import Image, oci_image, oci_index, push_image

N = int(os.environ.get("BENCH_PUSHES", "30"))
LATENCY_MS = 20
REPOSITORY = "bench/labels"


def _template(text: str) -> TagTemplate:
    return TagTemplate.parse(text, ["latest"])


def _push(acr: Emulator, build: Callable[..., Image]) -> Push:
    # A new commit per push: two pushes of one revision in one second would share a name.
    image = build(labels={REVISION_LABEL: secrets.token_hex(20)})
    acr.clear_faults()
    push_image(acr.endpoint, REPOSITORY, image, tag="latest", verify=acr.ca_bundle)
    acr.set_faults(latency_ms=LATENCY_MS)
    return Push(REPOSITORY, "latest", image.digest, datetime.now(UTC))


def _row(name: str, samples: list[tuple[int, float]], note: str) -> list[object]:
    counts = [c for c, _ in samples]
    times = [t for _, t in samples]
    return [
        name,
        f"{sum(counts) / len(counts):.2f}",
        f"{median(times):.1f}",
        f"{percentile(times, 95):.1f}",
        note,
    ]


def rows(acr: Emulator) -> list[list[object]]:
    warm = AcrRegistry(acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle)
    cases: list[tuple[str, str, Callable[..., Image], str]] = [
        ("default template, OCI image", DEFAULT_TEMPLATE, oci_image, "no config read"),
        (
            "prod-{revision:.7}-{timestamp}, OCI image",
            "prod-{revision:.7}-{timestamp}",
            oci_image,
            "+ config (307 + storage), + existence check",
        ),
        (
            "prod-{revision:.7}-{timestamp}, OCI index",
            "prod-{revision:.7}-{timestamp}",
            oci_index,
            "+ first platform manifest",
        ),
        (
            "prod-{revision:.7}-{timestamp}-{digest:.12}, OCI image",
            "prod-{revision:.7}-{timestamp}-{digest:.12}",
            oci_image,
            "unique names: no existence check",
        ),
    ]
    out: list[list[object]] = []
    tag_push(warm, _template(DEFAULT_TEMPLATE), _push(acr, oci_image))  # the repository's token
    redelivery: list[tuple[int, float]] = []
    for name, text, build, note in cases:
        template = _template(text)
        samples: list[tuple[int, float]] = []
        for _ in range(N):
            push = _push(acr, build)
            samples.append(counted(acr, lambda: tag_push(warm, template, push)))  # noqa: B023
            if build is oci_image and "revision" in text and "digest" not in text:
                _RECENT.clear()
                _LABELS.clear()
                redelivery.append(counted(acr, lambda: tag_push(warm, template, push)))  # noqa: B023
        out.append(_row(name, samples, note))
    out.append(_nudged_row(acr, warm))
    out.append(
        _row(
            "prod-{revision:.7}-{timestamp}, redelivery (new instance)",
            redelivery,
            "decided from the tags: no config read",
        )
    )
    warm.close()
    return out


def _nudged_row(acr: Emulator, warm: AcrRegistry) -> list[object]:
    """The default template plus the Flux nudge to a local generic-hmac Receiver (not a registry
    request: the emulator does not count it; the latency includes it)."""
    from emulator.flux_receiver import FluxReceiver
    from retag.announce import announce
    from retag.audit import TagAddedEvent
    from retag.settings import NotifySettings

    template = _template(DEFAULT_TEMPLATE)
    token = secrets.token_hex(32)
    samples: list[tuple[int, float]] = []
    with FluxReceiver(token) as receiver:
        notify = NotifySettings(flux_receiver_url=receiver.url, flux_receiver_token=token)

        def tag_and_nudge(push: Push) -> None:
            result = tag_push(warm, template, push)
            added = TagAddedEvent(
                acr.login_server, push.repository, "latest", push.digest, result.tag,
                push.pushed_at,
            )  # fmt: skip
            if announce(notify, added).nudge != "sent":
                raise RuntimeError("the nudge was not taken")

        for _ in range(N):
            push = _push(acr, oci_image)
            samples.append(counted(acr, lambda: tag_and_nudge(push)))  # noqa: B023
    return _row("default template + Flux nudge", samples, "+ 1 POST to the Receiver")


def main() -> None:
    with Emulator() as acr:
        measured: Any = rows(acr)
    report(
        "Label fields: requests and latency per re-tag",
        table(["case", "requests", "p50 ms", "p95 ms", "what it adds"], measured),
        f"{N} pushes per case of a new image to `latest` at {LATENCY_MS} ms injected latency per "
        "registry request; warm adapter (token calls excluded). Requests counted by the emulator, "
        "the storage GET after the 307 included. The image config is read only once a write is "
        "decided, and only for templates with {revision} or {created}.",
    )


if __name__ == "__main__":
    main()
