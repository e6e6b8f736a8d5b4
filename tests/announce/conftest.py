"""The CLI runner of tests/cli, for the `tag` command's announcements."""

from tests.cli.conftest import cli, isolated_cwd

__all__ = ["cli", "isolated_cwd"]
