"""The timer entry point (`run_scheduled_reconcile`) and the CLI (`retag.cli.reconcile`:
`add_arguments`, `execute`, and through `retag.cli.main`) against the emulator."""

from __future__ import annotations

import argparse
import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from datetime import timedelta
from pathlib import Path

import pytest

from emulator import Emulator
from retag.acr.client import AcrRegistry
from retag.cli.main import main
from retag.cli.reconcile import add_arguments, execute
from retag.reconcile.job import reconcile_registry, run_scheduled_reconcile
from retag.settings import Settings
from tests.reconcile.conftest import Pusher, make_registry, make_settings, tags_of, writes

HOUR = 3600


@pytest.fixture
def acr() -> Iterator[Emulator]:
    """The emulator on real time: the CLI compares push times with the real clock (timer tests
    pass the emulator's clock explicitly)."""
    with Emulator() as emulator:
        yield emulator


class Factory:
    """A registry factory that remembers whether the timer asked for a registry."""

    def __init__(self, acr: Emulator) -> None:
        self.acr = acr
        self.built: list[AcrRegistry] = []

    def __call__(self) -> AcrRegistry:
        registry = make_registry(self.acr)
        self.built.append(registry)
        return registry

    def close(self) -> None:
        for registry in self.built:
            registry.close()


@pytest.fixture
def factory(acr: Emulator) -> Iterator[Factory]:
    made = Factory(acr)
    yield made
    made.close()


def lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "test.reconcile"]


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> logging.Logger:
    caplog.set_level(logging.DEBUG, logger="test.reconcile")
    return logging.getLogger("test.reconcile")


def drifted_registry(acr: Emulator, pusher: Pusher) -> None:
    """Three repositories: one in sync, one missing its tag, one locked; all pushed an hour ago."""
    pusher.push("in-sync")
    pusher.push("missed")
    pusher.push("frozen")
    acr.advance_clock(HOUR)
    with make_registry(acr) as registry:
        reconcile_registry(
            registry, make_settings(acr), repository_filter=_only("in-sync"), now=acr.now()
        )
    pusher.lock_repository("frozen")
    acr.clear_requests()


def _only(name: str) -> re.Pattern[str]:
    return re.compile(re.escape(name))


def test_timer_off_does_nothing(
    acr: Emulator,
    pusher: Pusher,
    factory: Factory,
    log: logging.Logger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    drifted_registry(acr, pusher)
    settings = make_settings(acr, RECONCILE_MODE="off")
    assert run_scheduled_reconcile(settings, factory, log=log) is None
    assert factory.built == []
    assert acr.requests() == []
    [(level, line)] = lines(caplog)
    assert level == logging.INFO
    assert "mode=off" in line


def test_timer_dry_run_reports_drift_and_writes_nothing(
    acr: Emulator,
    pusher: Pusher,
    factory: Factory,
    log: logging.Logger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    drifted_registry(acr, pusher)
    settings = make_settings(acr, RECONCILE_MODE="dry-run")
    report = run_scheduled_reconcile(settings, factory, log=log, now=acr.now())
    assert report is not None
    assert report.mode == "dry-run"
    assert writes(acr) == []
    logged = lines(caplog)
    # one line per repository that is not in sync, then the summary; nothing for "in-sync".
    # (A dry run writes nothing, so it cannot discover the repository lock: "would-tag".)
    assert [line.split()[2:4] for _, line in logged[:-1]] == [
        ["status=would-tag", "repository=frozen"],
        ["status=would-tag", "repository=missed"],
    ]
    # Issue 11: the one log-line format; counts as snake_case keys; ok on every summary.
    assert logged[-1][1].startswith("acr-retag reconcile mode=dry-run ok=true ")
    assert "would_tag=2" in logged[-1][1]
    assert "in_sync=1" in logged[-1][1]


def test_timer_apply_tags_and_logs_one_line_per_repository_not_in_sync(
    acr: Emulator,
    pusher: Pusher,
    factory: Factory,
    log: logging.Logger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    drifted_registry(acr, pusher)
    settings = make_settings(acr)  # RECONCILE_MODE defaults to apply
    assert settings.reconcile.mode == "apply"
    report = run_scheduled_reconcile(settings, factory, log=log, past_due=True, now=acr.now())
    assert report is not None
    assert {r.repository: r.status for r in report.repositories} == {
        "frozen": "skipped",
        "in-sync": "in-sync",
        "missed": "tagged",
    }
    logged = lines(caplog)
    assert len(logged) == 3
    tagged_line = next(line for _, line in logged if "status=tagged" in line)
    [new_tag] = [t for t in tags_of(acr, factory.built[0], "missed") if t != "latest"]
    assert f"tag={new_tag}" in tagged_line
    assert "past_due=true" in logged[-1][1]
    for token in acr.issued_tokens():
        assert all(token not in line for _, line in logged)

    # a plain callable works too (what other timers pass)
    collected: list[str] = []
    again = run_scheduled_reconcile(settings, factory, log=collected.append, now=acr.now())
    assert again is not None
    assert collected[-1].startswith("acr-retag reconcile mode=apply ok=true ")
    assert "tagged=0" in collected[-1]
    assert len(collected) == 2  # frozen is still skipped; missed is in sync now


def test_timer_logs_failures_as_errors(
    acr: Emulator,
    pusher: Pusher,
    log: logging.Logger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pusher.push("app")
    acr.advance_clock(HOUR)
    with Emulator(anonymous=False) as locked_out:
        settings = make_settings(locked_out)
        with make_registry(locked_out) as registry:
            report = run_scheduled_reconcile(settings, lambda: registry, log=log)
    assert report is not None
    assert report.failed
    [(level, line)] = lines(caplog)
    assert level == logging.ERROR
    assert "listing repositories failed" in line


# -- CLI ----------------------------------------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="retag")
    sub = parser.add_subparsers(dest="command")
    add_arguments(sub.add_parser("reconcile"))
    return parser.parse_args(["reconcile", *argv])


def run_cli(
    args: argparse.Namespace, settings: Settings, registry: AcrRegistry
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = execute(args, settings, registry)
    return code, out.getvalue(), err.getvalue()


def main_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["reconcile", *argv])
    return code, out.getvalue(), err.getvalue()


def test_cli_flags_and_defaults() -> None:
    """Issue 11: `--mode` as on prune; `--dry-run` stays, as an alias of `--mode dry-run`."""
    args = parse()
    assert (args.mode, args.json, args.repository, args.concurrency) == (None, False, None, 8)
    assert args.max_duration == timedelta(minutes=8)
    args = parse("--dry-run", "--json", "--repository", "team/.*", "--concurrency", "3")
    assert args.mode == "dry-run"
    assert args.json
    assert args.repository.pattern == "team/.*"
    assert args.concurrency == 3
    assert parse("--mode", "dry-run").mode == "dry-run"
    assert parse("--mode", "apply").mode == "apply"
    assert parse("--max-duration", "90s").max_duration == timedelta(seconds=90)


@pytest.mark.parametrize(
    "argv",
    [
        ["--repository", "team/(unclosed"],
        ["--concurrency", "0"],
        ["--concurrency", "many"],
        ["--max-duration", "soon"],
        ["--mode", "delete"],
        ["--mode", "apply", "--dry-run"],
        ["--unknown"],
    ],
)
def test_cli_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse(*argv)
    assert stopped.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_cli_table_json_and_exit_codes(
    acr: Emulator, registry: AcrRegistry, pusher: Pusher
) -> None:
    digest = pusher.push("app")
    pusher.push("other")
    settings = make_settings(acr, RECONCILE_GRACE="0s")

    code, out, err = run_cli(parse("--dry-run", "--repository", "app"), settings, registry)
    assert code == 0, err
    table = out.splitlines()
    assert table[0].split() == ["REPOSITORY", "STATUS", "SOURCE", "DIGEST", "TAG", "REASON"]
    assert table[1].split()[:4] == ["app", "would-tag", "latest", digest[7:19]]
    assert table[-1].startswith("acr-retag reconcile mode=dry-run ok=true repositories=1")
    assert tags_of(acr, registry, "app") == {"latest": digest}
    assert err == ""

    code, out, err = run_cli(parse("--json"), settings, registry)
    assert code == 0, err
    document = json.loads(out)
    # Issue 11: the output contract's envelope around the report's data.
    assert (document["ok"], document["command"], document["error"]) == (True, "reconcile", None)
    assert document["interrupted"] is False
    assert document["mode"] == "apply"
    assert document["summary"]["tagged"] == 2
    [app] = [r for r in document["repositories"] if r["repository"] == "app"]
    [source] = app["sources"]
    assert source["status"] == "tagged"
    assert source["digest"] == digest
    assert source["tag"] in tags_of(acr, registry, "app")
    assert err == ""  # the JSON is the whole output: no summary line on stderr any more


def test_cli_exit_1_with_one_error_line_when_the_catalog_fails(
    acr: Emulator, pusher: Pusher
) -> None:
    pusher.push("app")
    acr.advance_clock(HOUR)
    acr.set_faults(error_rate=1.0, error_status=500)
    with make_registry(acr, retry_total=0) as registry:
        args = parse("--max-duration", "1s")
        code, out, err = run_cli(args, make_settings(acr), registry)
        args = parse("--max-duration", "1s", "--json")
        json_code, json_out, json_err = run_cli(args, make_settings(acr), registry)
    assert code == json_code == 1
    assert "error: listing repositories failed" in out
    for stderr in (err, json_err):
        [line] = stderr.splitlines()
        assert line.startswith("acr-retag: error: reconcile: listing repositories failed")
    document = json.loads(json_out)
    assert document["ok"] is False
    assert document["error"].startswith("listing repositories failed")


def test_cli_filter_matching_nothing_warns(
    acr: Emulator, registry: AcrRegistry, pusher: Pusher
) -> None:
    pusher.push("app")
    code, _, err = run_cli(
        parse("--dry-run", "--repository", "ap"), make_settings(acr), registry
    )  # full match: "ap" does not select "app"
    assert code == 0
    assert err.splitlines() == ["acr-retag: warning: --repository 'ap' matched no repository"]


def test_cli_reads_settings_from_the_environment(
    acr: Emulator, pusher: Pusher, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pusher.push("app")
    monkeypatch.chdir(tmp_path)  # no developer .env
    monkeypatch.setenv("RECONCILE_GRACE", "0s")
    monkeypatch.setenv("ACR_LOGIN_SERVER", acr.login_server)
    monkeypatch.setenv("ACR_CREDENTIAL", "anonymous")
    monkeypatch.setenv("ACR_CA_BUNDLE", acr.ca_bundle)
    code, out, _ = main_cli("--dry-run")
    assert code == 0
    assert "would-tag" in out


def test_cli_settings_error_exits_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ACR_LOGIN_SERVER", raising=False)
    code, _, err = main_cli()
    assert code == 2
    assert "ACR_LOGIN_SERVER" in err
    monkeypatch.setenv("ACR_LOGIN_SERVER", "registry.example")
    monkeypatch.setenv("RECONCILE_GRACE", "a while")
    code, _, err = main_cli()
    assert code == 2
    assert "RECONCILE_GRACE" in err
