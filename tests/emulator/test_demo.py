"""`make demo` (emulator.demo.run) end to end: the re-tag, the rollback Flux follows, the lost
event reconciled, pruning, and the platform team's `prod-<sha7>-<ts>` tag with its Flux nudge."""

from __future__ import annotations

import io
import logging
import os
import re

import pytest

from emulator import demo


def test_demo_runs_every_chapter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "environ", os.environ.copy())  # the demo sets app settings
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    try:
        assert demo.run(out) == 0
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    text = out.getvalue()
    assert "the rollback is deployed" in text
    assert "the reconcile_tags timer runs" in text
    assert re.search(r"outcome=retagged .* new_tag=prod-[0-9a-f]{7}-[0-9]{14} .*nudge=sent", text)
    assert re.search(r"Flux Receiver: signature ok, demo/web:prod-[0-9a-f]{7}-[0-9]{14}", text)
    assert "outcome=skipped" in text
    assert "image has no org.opencontainers.image.revision label" in text
