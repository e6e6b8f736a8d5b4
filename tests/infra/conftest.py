"""Session fixtures for the infrastructure tests: every .bicep file is parsed once per session."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.bicep import make_parser, parse_all


@pytest.fixture(scope="session")
def bicep() -> dict[str, dict[str, Any]]:
    """Parsed model of every infra/**/*.bicep file, keyed by path relative to infra/."""
    return parse_all(make_parser())
