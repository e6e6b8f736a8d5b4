"""The one table of intended differences is complete and documented."""

from __future__ import annotations

from pathlib import Path

from tests.differential.differences import ACR_DIFFERENCES, INTENDED

README = Path(__file__).resolve().parents[2] / "emulator" / "README.md"


def test_every_acr_difference_is_classified_and_reasoned() -> None:
    for key, difference in ACR_DIFFERENCES.items():
        assert difference.kind in {"intended", "unknown"}, key
        assert difference.emulator.strip(), key
        assert difference.reason.strip(), key


def test_emulator_readme_lists_every_difference() -> None:
    """emulator/README.md names every ACR_DIFFERENCES and INTENDED (distribution) key."""
    text = README.read_text()
    missing = [key for key in (*ACR_DIFFERENCES, *INTENDED) if f"`{key}`" not in text]
    assert not missing, f"emulator/README.md does not list: {missing}"
