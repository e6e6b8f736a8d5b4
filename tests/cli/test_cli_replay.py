"""replay: every file in samples/events/ through the Function's handler against the emulator.

The samples name `request.host` 127.0.0.1:5443 and digests of images that only existed where
they were recorded. Each test works on copies: the host is rewritten to the emulator's login
server, and every event that will write gets a real image of the same media type pushed under
its repository and tag, whose digest replaces the recorded one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from emulator import Emulator
from retag.events import ImagePushed, parse_event, parse_payload
from retag.settings import load_settings
from tests.cli.conftest import RunCli, assert_one_line_error
from tests.support.images import (
    Image,
    docker_image,
    docker_manifest_list,
    oci_image,
    oci_index,
    push_image,
)

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "events"
SAMPLE_HOST = "127.0.0.1:5443"
BUILDERS = {
    "application/vnd.docker.distribution.manifest.v2+json": docker_image,
    "application/vnd.oci.image.manifest.v1+json": oci_image,
    "application/vnd.oci.image.index.v1+json": oci_index,
    "application/vnd.docker.distribution.manifest.list.v2+json": docker_manifest_list,
}


def sample_files() -> list[Path]:
    return sorted(SAMPLES.glob("*.json"))


def writes_expected(event: ImagePushed, source_tags: tuple[str, ...]) -> bool:
    return event.tag is not None and event.tag in source_tags


def prepare(path: Path, acr: Emulator, out_dir: Path, seed: int) -> tuple[Path, list[str]]:
    """Copy `path` with the host rewritten and real digests; return (copy, expected new tags)."""
    settings = load_settings({"ACR_LOGIN_SERVER": acr.login_server})
    text = path.read_text(encoding="utf-8").replace(SAMPLE_HOST, acr.login_server)
    expected: list[str] = []
    for offset, envelope in enumerate(parse_payload(text)):
        event = parse_event(envelope)
        if not isinstance(event, ImagePushed) or not writes_expected(
            event, settings.retag.source_tags
        ):
            continue
        assert event.tag is not None
        media_type = event.media_type or "application/vnd.docker.distribution.manifest.v2+json"
        image: Image = BUILDERS[media_type](seed=seed + offset)
        push_image(acr.endpoint, event.repository, image, event.tag, verify=acr.ca_bundle)
        text = text.replace(event.digest, image.digest)
        expected.append(
            settings.retag.template.render(event.tag, event.pushed_at, image.digest)
            + "@"
            + image.digest
        )
    copy = out_dir / path.name
    copy.write_text(text, encoding="utf-8")
    return copy, expected


def test_samples_are_there() -> None:
    names = {p.name for p in sample_files()}
    assert {"image-pushed-latest.json", "image-pushed-index.json", "image-deleted.json"} <= names


@pytest.mark.parametrize("sample", sample_files(), ids=lambda p: p.name)
def test_replay_every_sample(
    cli: RunCli, env: dict[str, str], acr: Emulator, tmp_path: Path, sample: Path
) -> None:
    copy, expected = prepare(sample, acr, tmp_path, seed=len(sample.name))
    count = len(parse_payload(copy.read_bytes()))
    acr.clear_requests()
    run = cli(["replay", str(copy)], env=env)
    assert run.code == 0, run.out + run.err
    lines = run.out.splitlines()
    outcomes = [re.search(r"outcome=(\w+)", line) for line in lines[:-1]]
    assert len(outcomes) == count
    statuses = [m.group(1) for m in outcomes if m]
    assert statuses.count("retagged") == len(expected)
    assert set(statuses) <= {"retagged", "ignored"}
    assert lines[-1].startswith(f"replayed {count} event(s) from 1 file(s)")
    for item in expected:
        new_tag, digest = item.split("@")
        repository = next(
            e.repository
            for e in map(parse_event, parse_payload(copy.read_bytes()))
            if isinstance(e, ImagePushed) and e.digest == digest
        )
        assert acr.tag_digest(repository, new_tag) == digest
        assert any(f"new_tag={new_tag}" in line for line in lines)
    if not expected:  # ignored events never write
        assert not [r for r in acr.requests() if r["method"] in ("PUT", "DELETE", "PATCH")]

    # Replaying again (Event Grid redelivery, a second replay of dead letters) changes nothing:
    # each push is found already tagged, and nothing is written (issue 12).
    acr.clear_requests()
    again = cli(["replay", str(copy), "--json"], env=env)
    assert again.code == 0
    report = json.loads(again.out)
    assert [e["status"] for e in report["events"]] == ["ignored"] * count
    assert [e["new_tag"] for e in report["events"] if "already tagged" in e["reason"]] == [
        item.split("@")[0] for item in expected
    ]
    assert not [r for r in acr.requests() if r["method"] in ("PUT", "DELETE", "PATCH")]


def test_replay_all_samples_at_once(
    cli: RunCli, env: dict[str, str], acr: Emulator, tmp_path: Path
) -> None:
    copies = [prepare(p, acr, tmp_path, seed=100 + i)[0] for i, p in enumerate(sample_files())]
    run = cli(["replay", *map(str, copies)], env=env)
    assert run.code == 0, run.out + run.err
    assert f"from {len(copies)} file(s)" in run.out.splitlines()[-1]


def dead_letter(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What Event Grid writes to the dead-letter container: the events plus delivery fields."""
    return [
        {
            **event,
            "deadLetterReason": "MaxDeliveryAttemptsExceeded",
            "deliveryAttempts": 30,
            "lastDeliveryOutcome": "Probation",
            "lastHttpStatusCode": 503,
            "publishTime": "2026-11-29T23:07:01.0000000Z",
            "lastDeliveryAttemptTime": "2026-11-30T23:07:01.0000000Z",
        }
        for event in events
    ]


def test_replay_dead_lettered_blob(
    cli: RunCli, env: dict[str, str], acr: Emulator, tmp_path: Path
) -> None:
    copy, expected = prepare(SAMPLES / "image-pushed-latest.json", acr, tmp_path, seed=7)
    blob = tmp_path / "deadletter-blob.json"
    blob.write_text(json.dumps(dead_letter(json.loads(copy.read_text()))))
    run = cli(["replay", str(blob)], env=env)
    assert run.code == 0, run.out + run.err
    (item,) = expected
    assert f"new_tag={item.split('@')[0]}" in run.out
    assert "outcome=retagged" in run.out


def test_replay_rejects_events_for_another_registry(
    cli: RunCli, env: dict[str, str], tmp_path: Path
) -> None:
    """The unmodified sample names 127.0.0.1:5443, not this registry: rejected, exit 1."""
    run = cli(["replay", str(SAMPLES / "image-pushed-latest.json")], env=env)
    assert run.code == 1
    assert "outcome=rejected" in run.out
    assert "1 rejected" in run.out.splitlines()[-1]


def test_replay_bad_files_are_reported_and_the_rest_still_runs(
    cli: RunCli, env: dict[str, str], acr: Emulator, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    good, _ = prepare(SAMPLES / "image-pushed-v1.json", acr, tmp_path, seed=3)
    malformed = tmp_path / "malformed.json"
    malformed.write_text(json.dumps([{"id": "x", "eventType": 42}]))
    run = cli(
        ["replay", str(garbage), str(tmp_path / "missing.json"), str(good), str(malformed)],
        env=env,
    )
    assert run.code == 1
    errors = [line for line in run.err.splitlines() if line.startswith("acr-retag: error:")]
    assert len(errors) == 2
    assert "garbage.json: not an event file: unparsable JSON" in errors[0]
    assert "missing.json: cannot read" in errors[1]
    assert "Traceback" not in run.err
    assert "outcome=ignored" in run.out  # the v1 sample still ran
    assert "outcome=rejected" in run.out  # the malformed event: one line, nothing written


def test_replay_transient_failure_is_reported_as_failed(
    cli: RunCli, env: dict[str, str], acr: Emulator, tmp_path: Path
) -> None:
    copy, _ = prepare(SAMPLES / "image-pushed-latest.json", acr, tmp_path, seed=11)
    acr.set_faults(error_rate=1.0, error_status=503, seed=1)
    try:
        run = cli(["replay", str(copy)], env=env)
    finally:
        acr.clear_faults()
    assert run.code == 1
    assert "outcome=failed" in run.out
    assert "retry=true" in run.out
    assert "1 failed" in run.out.splitlines()[-1]
    assert "Traceback" not in run.err


def test_replay_needs_settings(cli: RunCli) -> None:
    run = cli(["replay", str(SAMPLES / "image-pushed-latest.json")], env={})
    assert run.code == 2
    assert_one_line_error(run, "settings: ACR_LOGIN_SERVER")
