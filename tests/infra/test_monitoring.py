"""Alerts and the workbook: their queries parse the outcome lines the app really writes.

The lines come from running the code (retag.on_push.Outcome, retag.prune.report,
retag.reconcile.report), and each `extract(@"...")` regex of a query (KQL's RE2, whose syntax
for these patterns is Python's too) must find its field in the line it reads; so a renamed field
in the app breaks this test, not a dashboard in production.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from retag.on_push import Outcome
from retag.prune.plan import DeleteReason, Deletion
from retag.prune.report import Failure, PruneReport, RepositoryResult
from retag.reconcile.report import ReconcileReport
from retag.reconcile.report import RepositoryResult as ReconcileResult
from tests.support.bicep import INFRA, condition, config, one_resource, resources_of_type, variable

MONITORING = INFRA / "monitoring"
DIGEST = "sha256:" + "3f2a9c1b7d4e" * 5 + "abcd"


def outcome_line() -> str:
    return Outcome(
        status="retagged",
        reason="generated tag added",
        event_id="e-1",
        repository="team-a/api",
        source_tag="latest",
        digest=DIGEST,
        new_tag="latest_20261129230700123_3f2a9c1b7d4e",
        duration_ms=21.0,
        requests=2,
    ).log_line()


def prune_line(mode: str) -> str:
    started = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    results = [RepositoryResult("team-a/api", mode=mode)]  # type: ignore[arg-type]
    report = PruneReport(mode=mode, started_at=started, repositories=results)  # type: ignore[arg-type]
    return report.log_line()


def reconcile_line(mode: str) -> str:
    report = ReconcileReport(
        mode=mode,
        started_at=datetime(2026, 11, 30, 3, 0, tzinfo=UTC),
        max_duration=timedelta(minutes=8),
        repositories=[ReconcileResult("team-a/api", "tagged")],
    )
    return report.log_line()


LINES = {
    "acr-retag outcome=retagged ": [outcome_line()],
    "acr-retag prune ": [prune_line("delete"), prune_line("dry-run")],
    "acr-retag reconcile ": [reconcile_line("apply"), reconcile_line("dry-run")],
}


def query(name: str) -> str:
    return (MONITORING / name).read_text()


def filters(text: str) -> list[str]:
    return re.findall(r'message startswith "([^"]+)"', text)


def extracts(text: str) -> list[str]:
    return [
        pattern.replace(r"\x22", '"') for pattern in re.findall(r'extract\(@"([^"]+)", 1', text)
    ]


TRACE_QUERIES = [
    "retags-per-repository.kql",
    "push-to-tag-latency.kql",
    "push-to-tag-latency-alert.kql",
    "prune-runs.kql",
    "reconcile-drift.kql",
]


@pytest.mark.parametrize("name", TRACE_QUERIES)
def test_every_field_a_query_parses_is_in_a_real_line(name: str) -> None:
    text = query(name)
    (prefix,) = filters(text)
    lines = LINES[prefix]
    for line in lines:
        assert line.startswith(prefix), line
    new_tag = None
    for pattern in extracts(text):
        if pattern == "([0-9]{14})":  # applied to new_tag, not to the line
            assert new_tag is not None
            assert re.search(pattern, new_tag).group(1) == "20261129230700"  # type: ignore[union-attr]
            continue
        if pattern.startswith(r"\berror="):
            continue  # present only on a failed run: checked below
        for line in lines:
            found = re.search(pattern, line)
            assert found, f"{name}: {pattern} not in {line}"
            if "new_tag" in pattern:
                new_tag = found.group(1)


def test_prune_error_field_is_read_from_a_failed_run() -> None:
    item = Deletion(kind="tag", name="latest_1", digest=DIGEST, reason=DeleteReason.EXPIRED)
    failed = RepositoryResult("team-a/api", failed=(Failure(item, "HTTP 500"),))
    report = PruneReport(mode="delete", started_at=datetime.now(UTC), repositories=[failed])
    line = report.log_line()
    (pattern,) = [p for p in extracts(query("prune-runs.kql")) if p.startswith(r"\berror=")]
    assert re.search(pattern, line).group(1).startswith('"1 deletion(s) failed')  # type: ignore[union-attr]
    assert re.search(r"\bfailed=([0-9]+)", line).group(1) == "1"  # type: ignore[union-attr]


def test_summary_filters_do_not_match_the_per_repository_lines() -> None:
    per_repository = RepositoryResult("team-a/api").log_line()
    assert per_repository.startswith("acr-retag prune-repository ")
    assert not per_repository.startswith("acr-retag prune ")
    reconcile_repo = ReconcileResult("team-a/api", "tagged").log_line()
    assert not reconcile_repo.startswith("acr-retag reconcile ")


def test_failed_invocation_rule_per_function(bicep: dict[str, Any]) -> None:
    """One log alert rule per function of the app, on the unsampled requests table."""
    import importlib

    import function_app

    names = {f.get_function_name() for f in importlib.reload(function_app).app.get_functions()}
    main = bicep["main.bicep"]
    listed = config(main["modules"]["alerts"])["params"]["functionNames"]
    assert set(listed) == {"functionName", "prune_tags", "reconcile_tags"}
    assert variable(main, "functionName") in names
    assert names == {"on_image_pushed", "prune_tags", "reconcile_tags"}
    text = query("failed-invocations.kql")
    assert 'where name == "FUNCTION_NAME" and success == false' in text
    rule = json.dumps(bicep["core/alerts.bicep"]["resources"]["failureAlerts"])
    assert "functionNames" in rule
    assert "replace" in rule
    assert "FUNCTION_NAME" in rule


def test_action_group_email_is_optional(bicep: dict[str, Any]) -> None:
    alerts = bicep["core/alerts.bicep"]
    assert alerts["parameters"]["alertEmail"]["default"] == ""
    receivers = variable(alerts, "emailReceivers")["operator"]["operands"]
    assert receivers["true_value"] == []
    group = config(one_resource(alerts, "Microsoft.Insights/actionGroups"))
    assert group["properties"]["emailReceivers"] == "emailReceivers"


def test_dead_letter_alerts_watch_this_subscription_only(bicep: dict[str, Any]) -> None:
    """DeadLetteredCount and DroppedEventCount with dimension EventSubscriptionName: Event Grid
    monitoring data reference (push delivery),
    https://learn.microsoft.com/azure/event-grid/monitor-push-reference."""
    model = bicep["core/deadletter-alerts.bicep"]
    assert variable(model, "metrics") == {
        "deadLettered": "DeadLetteredCount",
        "dropped": "DroppedEventCount",
    }
    text = str(model["resources"]["alerts"])
    assert "EventSubscriptionName" in text
    assert "Microsoft.EventGrid/systemTopics" in text
    phase2 = bicep["subscription.bicep"]["modules"]["deadLetterAlerts"]
    assert config(phase2)["params"]["eventSubscriptionName"] is not None
    assert condition(phase2) is None


def test_workbook_shows_the_four_views(bicep: dict[str, Any]) -> None:
    alerts = bicep["core/alerts.bicep"]
    items = variable(alerts, "workbookQueries")
    files = [item["query"]["function"]["parameters"]["file_path"] for item in items]
    assert files == [
        "../monitoring/retags-per-repository.kql",
        "../monitoring/push-to-tag-latency.kql",
        "../monitoring/prune-runs.kql",
        "../monitoring/reconcile-drift.kql",
    ]
    for path in files:
        assert (INFRA / "core" / path).resolve().is_file()
    assert len(resources_of_type(alerts, "Microsoft.Insights/workbooks")) == 1
