"""The shared text helpers (`retag.logline`, `retag.oci.short_digest`) and the log lines of
reconciliation and pruning, which use them like the event path does."""

from __future__ import annotations

from datetime import UTC, datetime

from retag.logline import describe_error, format_field, format_text, one_line
from retag.oci import short_digest
from retag.prune.report import PruneReport
from retag.prune.report import RepositoryResult as PruneResult
from retag.reconcile.report import RepositoryResult, SourceTagResult

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhY3ItcmV0YWcifQ.c2lnbmF0dXJlLWJ5dGVz"
DIGEST = "sha256:" + "3f2a9c1b7d4e" * 5 + "abcd"


def test_short_digest() -> None:
    assert short_digest(DIGEST) == "sha256:3f2a9c1b7d4e"
    assert short_digest(DIGEST, algorithm=False) == "3f2a9c1b7d4e"
    assert short_digest(DIGEST.removeprefix("sha256:")) == "sha256:3f2a9c1b7d4e"
    assert short_digest("sha512:" + "ab" * 64) == "sha512:abababababab"


def test_fields_and_text() -> None:
    assert format_field(None) == "-"
    assert format_field("-") == '"-"'
    assert format_field("team/app") == "team/app"
    assert format_field("a b\n") == '"a b\\n"'
    assert format_field(f"id-{JWT}") == '"id-[redacted]"'
    assert format_text("line one\nline two") == '"line one\\nline two"'
    assert format_text("x" * 50, limit=10) == '"xxxxxxx..."'
    assert JWT not in format_text(f"Bearer {JWT}")


def test_one_line_and_describe_error() -> None:
    assert one_line("a\n  b\tc") == "a b c"
    assert one_line("y" * 500) == "y" * 397 + "..."
    assert describe_error(RuntimeError("first\nsecond")) == "RuntimeError: first second"
    assert describe_error(ValueError("  ")) == "ValueError"
    assert len(describe_error(OSError("z" * 1000))) == len("OSError: ") + 300


def test_reconcile_lines_never_contain_a_token() -> None:
    source = SourceTagResult("latest", "failed", DIGEST, reason=f"refused: token={JWT}")
    result = RepositoryResult.from_sources("app", [source], 3)
    line = result.log_line()
    assert JWT not in line
    assert (
        line.startswith(  # issue 11, shared plan §5: per-repository lines are reconcile-repository
            "acr-retag reconcile-repository status=failed repository=app source_tag=latest "
        )
    )
    assert 'reason="latest: refused: token=[redacted]"' in line


def test_prune_lines_never_contain_a_token() -> None:
    result = PruneResult("app", error=f"listing failed: Bearer {JWT}")
    # Issue 11: prune lines use the one format (text keys JSON-quoted), like every other line.
    assert result.log_line("dry-run").endswith('error="listing failed: Bearer [redacted]"')
    report = PruneReport(
        mode="dry-run", started_at=datetime.now(UTC), catalog_error=f"password={JWT}"
    )
    assert report.log_line().endswith('error="password=[redacted]"')


def test_one_line_format() -> None:
    from retag.logline import LOGGER, line

    text = line(
        "prune",
        {"ok": False, "deleted_tags": 0, "duration_ms": 12.34, "repository": "a b", "error": "x"},
    )
    assert (
        text
        == 'acr-retag prune ok=false deleted_tags=0 duration_ms=12.3 repository="a b" error="x"'
    )
    assert line("reconcile", {"token": None}) == "acr-retag reconcile token=-"
    assert f"reason={format_text(JWT)}" in line("x", {"reason": JWT})
    assert "[redacted]" in line("x", {"reason": JWT})
    assert LOGGER.name == "acr-retag"


def test_levels_follow_the_outcome() -> None:
    import logging

    from retag.logline import level_for

    assert level_for("ok") == level_for("ignored") == logging.INFO
    assert level_for("rejected") == level_for("skipped") == logging.WARNING
    assert level_for("failed") == level_for("anything else") == logging.ERROR
