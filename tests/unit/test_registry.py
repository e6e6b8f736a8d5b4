"""The registry contract's pure parts: the per-thread time budget and lock flags."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from retag.registry import TagInfo, budget_deadline, time_budget


def test_no_budget_outside_a_block() -> None:
    assert budget_deadline() is None


def test_budget_sets_a_deadline_and_restores_it() -> None:
    before = time.monotonic()
    with time_budget(5):
        deadline = budget_deadline()
        assert deadline is not None
        assert before + 5 <= deadline <= time.monotonic() + 5
    assert budget_deadline() is None


def test_inner_budget_never_extends_the_outer_one() -> None:
    with time_budget(1):
        outer = budget_deadline()
        with time_budget(60):
            assert budget_deadline() == outer
        with time_budget(0.1):
            inner = budget_deadline()
            assert inner is not None
            assert outer is not None
            assert inner < outer
        assert budget_deadline() == outer


def test_budget_is_per_thread() -> None:
    seen: list[float | None] = []
    with time_budget(5):
        worker = threading.Thread(target=lambda: seen.append(budget_deadline()))
        worker.start()
        worker.join()
    assert seen == [None]


@pytest.mark.parametrize("seconds", [0, -1, float("nan")])
def test_budget_must_be_positive(seconds: float) -> None:
    with pytest.raises(ValueError, match="positive"), time_budget(seconds):
        pass


@pytest.mark.parametrize(
    ("can_delete", "can_write", "locked"),
    [(True, True, False), (False, True, True), (True, False, True), (False, False, True)],
)
def test_tag_locked_when_delete_or_write_is_disabled(
    can_delete: bool, can_write: bool, locked: bool
) -> None:
    now = datetime(2026, 11, 29, tzinfo=UTC)
    tag = TagInfo("latest", "sha256:" + "0" * 64, now, now, can_delete, can_write)
    assert tag.locked is locked
