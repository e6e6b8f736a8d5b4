"""The command line: `acr-retag` / `python -m retag`."""

from retag.cli.main import main

__all__ = ["main"]
