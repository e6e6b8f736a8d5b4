"""`acr-retag prune` (retag.cli.prune) and the timer entry (run_scheduled_prune) on the emulator."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest

from emulator import Emulator
from retag.acr.client import AcrRegistry
from retag.cli.prune import main
from retag.prune.job import run_scheduled_prune
from retag.settings import load_settings
from tests.prune.emulated import Seeder, deletes, tags_of


@pytest.fixture
def env(acr: Emulator) -> dict[str, str]:
    return {
        "ACR_LOGIN_SERVER": acr.login_server,
        "ACR_CREDENTIAL": "anonymous",
        "ACR_CA_BUNDLE": acr.ca_bundle,
        "PRUNE_KEEP": "1",
        "PRUNE_MIN_AGE": "7d",
    }


@pytest.fixture
def seeded(acr: Emulator, seed: Seeder) -> dict[str, list[str]]:
    app, _ = seed.generated_on_one_image("app", 4)
    api, _ = seed.generated_on_one_image("team/api", 3)
    seed.now()
    acr.clear_requests()
    return {"app": app, "team/api": api}


def cli(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, env=env, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_defaults_to_a_dry_run_even_when_prune_mode_is_delete(
    acr: Emulator, env: dict[str, str], seeded: dict[str, list[str]]
) -> None:
    code, out, err = cli([], {**env, "PRUNE_MODE": "delete"})
    assert code == 0, err
    assert deletes(acr, accepted_only=False) == []
    assert "WOULD DELETE TAGS" in out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert lines["app"][1] == "3"  # keep 1 of 4
    assert lines["team/api"][1] == "2"
    assert lines["TOTAL"][1] == "5"
    assert "newest-n=1" in lines["app"][-1] or "newest-n=1" in out
    assert err == ""  # no progress when stderr is not a terminal
    # The plan itself, one line per deletion: what delete mode would do, and why.
    would = [line.split() for line in out.splitlines() if line.startswith("would delete: app ")]
    assert len(would) == 3
    assert {words[4] for words in would} < set(seeded["app"])
    assert all(words[3] == "tag" and words[-1] == "expired)" for words in would)


def test_cli_delete_with_flags_and_json(
    acr: Emulator, env: dict[str, str], seeded: dict[str, list[str]]
) -> None:
    code, out, _ = cli(
        ["--mode", "delete", "--keep", "0", "--repository", "team/.*", "--json"], env
    )
    assert code == 0
    report = json.loads(out)
    assert report["mode"] == "delete"
    assert report["ok"] is True
    assert [r["repository"] for r in report["repositories"]] == ["team/api"]
    deleted = [d["name"] for d in report["repositories"][0]["deleted_items"]]
    assert deleted == seeded["team/api"]
    assert all(d["reason"] == "expired" for d in report["repositories"][0]["deleted_items"])
    kept = report["repositories"][0]["kept_items"]
    assert [(k["kind"], k["reason"]) for k in kept] == [("manifest", "untagged-disabled")]
    assert tags_of(acr, "team/api") == {}
    assert len(tags_of(acr, "app")) == 4


@pytest.mark.parametrize(
    ("argv", "env_change", "message"),
    [
        (["--keep", "-1"], {}, "between 0 and"),
        (["--min-age", "7 days"], {}, "not a duration"),
        (["--repository", "("], {}, "not a regular expression"),
        (["--mode", "off"], {}, "invalid choice"),
        ([], {"PRUNE_KEEP": "many"}, "PRUNE_KEEP"),
        ([], {"ACR_LOGIN_SERVER": ""}, "ACR_LOGIN_SERVER"),
    ],
)
def test_usage_and_settings_errors_exit_2(
    env: dict[str, str],
    argv: list[str],
    env_change: dict[str, str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = cli(argv, {**env, **env_change})
    assert code == 2
    assert message in err + capsys.readouterr().err


def test_cli_exits_1_when_a_deletion_fails() -> None:
    with Emulator(anonymous=True, anonymous_actions={"pull", "push", "metadata_read"}) as acr:
        s = Seeder(acr)
        try:
            s.generated_on_one_image("app", 2)
            s.now()
        finally:
            s.close()
        env = {
            "ACR_LOGIN_SERVER": acr.login_server,
            "ACR_CREDENTIAL": "anonymous",
            "ACR_CA_BUNDLE": acr.ca_bundle,
            "PRUNE_KEEP": "0",
        }
        code, out, _ = cli(["--mode", "delete"], env)
    assert code == 1
    assert "failed: app tag" in out
    assert "permission denied" in out


def test_timer_honours_prune_mode(
    acr: Emulator, env: dict[str, str], seeded: dict[str, list[str]]
) -> None:
    built: list[AcrRegistry] = []

    def factory() -> AcrRegistry:
        client = AcrRegistry(acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle)
        built.append(client)
        return client

    lines: list[str] = []
    off = run_scheduled_prune(
        load_settings({**env, "PRUNE_MODE": "off"}), factory, past_due=False, log=lines.append
    )
    assert off.mode == "off"
    assert built == []
    assert acr.requests() == []
    # Issue 11: one log-line format (`acr-retag <kind> key=value ...`) for every summary line.
    assert lines == [
        'acr-retag prune mode=off ok=true reason="PRUNE_MODE=off: skipped'
        ' (set PRUNE_MODE=dry-run or delete to enable)"'
    ]

    lines.clear()
    dry = run_scheduled_prune(
        load_settings({**env, "PRUNE_MODE": "dry-run"}), factory, past_due=True, log=lines.append
    )
    assert deletes(acr, accepted_only=False) == []
    assert dry.totals()["deleted_tags"] == 5
    assert lines[0] == (
        'acr-retag prune-timer past_due=true message="the timer is past due; running now"'
    )
    assert [line.split()[:3] for line in lines[1:3]] == [
        ["acr-retag", "prune-repository", "repository=app"],
        ["acr-retag", "prune-repository", "repository=team/api"],
    ]
    assert "would_delete_tags=3 " in lines[1]  # dry-run: planned, never "deleted_*"
    assert lines[3].startswith(
        "acr-retag prune mode=dry-run ok=true repositories=2 would_delete_tags=5 "
    )
    assert " duration_ms=" in lines[3]
    assert " requests=" in lines[3]
    assert len(lines) == 4

    lines.clear()
    real = run_scheduled_prune(
        load_settings({**env, "PRUNE_MODE": "delete"}), factory, past_due=False, log=lines.append
    )
    assert real.ok
    assert len(deletes(acr)) == 5
    assert len(tags_of(acr, "app")) == 1
    assert len(lines) == 3
    assert " ok=true " in lines[-1]
    assert " complete=true" in lines[-1]
    # The timer keeps memory flat: per-repository results drop kept items that are not locks.
    assert all(not r.kept for r in real.repositories)
    for client in built:
        client.close()


def test_timer_respects_repository_filters_and_time_box(
    acr: Emulator, env: dict[str, str], seeded: dict[str, list[str]]
) -> None:
    settings = load_settings(
        {**env, "PRUNE_MODE": "delete", "RETAG_EXCLUDE_REPOSITORIES": "team/.*"}
    )
    lines: list[str] = []
    with AcrRegistry(acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle) as client:
        report = run_scheduled_prune(settings, client, past_due=False, log=lines.append)
    assert [r.repository for r in report.repositories] == ["app"]
    assert len(tags_of(acr, "team/api")) == 3
    assert settings.prune.max_duration == timedelta(minutes=8)
