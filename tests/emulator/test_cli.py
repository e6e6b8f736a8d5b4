"""`python -m emulator serve` as a subprocess: the JSON line, signals, --data, --no-anonymous."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.emulator.helpers import unique_repo
from tests.support import images

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def serve(*args: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator", "serve", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, process.stderr.read() if process.stderr else "no output"
        yield process, json.loads(line)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _stop(process: subprocess.Popen[str], sig: int) -> int:
    process.send_signal(sig)
    return process.wait(timeout=15)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_one_json_line_and_exits_cleanly(sig: int) -> None:
    with serve() as (process, info):
        assert set(info) == {
            "endpoint",
            "login_server",
            "ca_bundle",
            "storage_endpoint",
            "topic_endpoint",
            "topic_key",
        }
        assert info["topic_endpoint"] == info["endpoint"] + "/api/events"
        assert info["topic_key"]
        assert info["storage_endpoint"].startswith("https://localhost:")
        assert info["endpoint"] == f"https://{info['login_server']}"
        assert info["login_server"].startswith("127.0.0.1:")
        assert Path(info["ca_bundle"]).is_absolute()
        assert Path(info["ca_bundle"]).name == "ca.pem"
        answer = requests.get(info["endpoint"] + "/v2/", verify=info["ca_bundle"], timeout=10)
        assert answer.status_code == 401
        assert _stop(process, sig) == 0
        assert process.stdout is not None
        assert process.stdout.read() == ""  # exactly one line
        assert not Path(info["ca_bundle"]).exists()  # the temp dir is cleaned up


def test_data_dir_survives_restart(tmp_path: Path) -> None:
    data = tmp_path / "state"
    repo = unique_repo("persist")
    image = images.docker_image(seed=3)
    index = images.oci_index(seed=4)
    with serve("--data", str(data)) as (process, info):
        assert info["ca_bundle"] == str(data / "ca.pem")
        images.push_image(info["endpoint"], repo, image, "v1", verify=info["ca_bundle"])
        images.push_image(info["endpoint"], repo, index, "multi", verify=info["ca_bundle"])
        assert _stop(process, signal.SIGTERM) == 0
    with serve("--data", str(data)) as (process, info):
        with images.V2Session(info["endpoint"], verify=info["ca_bundle"]) as session:
            for ref, expected in (
                ("v1", image),
                ("multi", index),
                (index.children[0].digest, index.children[0]),
            ):
                got = session.get_manifest(repo, ref)
                assert got.status_code == 200
                assert got.content == expected.raw
                assert got.headers["Content-Type"] == expected.media_type
            layer = image.blobs[-1]
            blob = session.request("GET", f"/v2/{repo}/blobs/{layer.digest}")
            assert blob.content == layer.data
            tags = session.request("GET", f"/acr/v1/{repo}/_tags").json()["tags"]
            assert [t["name"] for t in tags] == ["multi", "v1"]
        assert _stop(process, signal.SIGTERM) == 0


def test_no_anonymous_flag() -> None:
    with serve("--no-anonymous") as (process, info):
        answer = requests.post(
            info["endpoint"] + "/oauth2/token",
            data={
                "grant_type": "password",
                "service": info["login_server"],
                "scope": "repository:a:pull",
            },
            verify=info["ca_bundle"],
            timeout=10,
        )
        assert answer.status_code == 401
        assert _stop(process, signal.SIGTERM) == 0


@pytest.mark.parametrize(
    "args", [["--host", "0.0.0.0"], ["--subscriber", "http://example.com/x"], ["--port", "-1"]]
)
def test_bad_arguments_are_refused_with_a_message(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "emulator", "serve", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "emulator:" in done.stderr
    assert "Traceback" not in done.stderr


def test_subscriber_flag_delivers(tmp_path: Path) -> None:
    from tests.emulator.test_admin import Subscriber

    hook = Subscriber()
    try:
        with serve("--subscriber", hook.url) as (process, info):
            images.push_image(
                info["endpoint"],
                unique_repo("cli"),
                images.oci_image(seed=5),
                "v1",
                verify=info["ca_bundle"],
            )
            events = requests.get(
                info["endpoint"] + "/_emulator/events", verify=info["ca_bundle"], timeout=10
            ).json()
            assert [e["data"]["target"]["tag"] for e in events] == ["v1"]
            assert _stop(process, signal.SIGTERM) == 0
        assert [body[0]["id"] for _, body in hook.received] == [events[0]["id"]]
    finally:
        hook.close()


def test_corrupt_state_is_refused_not_overwritten(tmp_path: Path) -> None:
    data = tmp_path / "state"
    data.mkdir()
    (data / "state.json").write_text("{not json")
    done = subprocess.run(
        [sys.executable, "-m", "emulator", "serve", "--data", str(data)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert done.returncode == 2
    assert "unreadable emulator state" in done.stderr
    assert "Traceback" not in done.stderr
    assert (data / "state.json").read_text() == "{not json"
