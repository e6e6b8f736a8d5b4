"""The application settings the code reads, for comparing with what the infrastructure sets.

TODO(lead): once branch `core` (retag/config.py) is merged, `code_settings()` reads
`retag.config.SETTINGS` and `test_expected_list_matches_retag_config` checks this fallback list
against it; after that, delete EXPECTED_SETTINGS and import SETTINGS directly.
"""

from __future__ import annotations

import importlib

# name -> the code's default as an app-setting string (None: no default / unset).
EXPECTED_SETTINGS: dict[str, str | None] = {
    "ACR_LOGIN_SERVER": None,
    "ACR_CREDENTIAL": "default",
    "ACR_AUDIENCE": "https://containerregistry.azure.net",
    "ACR_CA_BUNDLE": None,
    "RETAG_SOURCE_TAGS": "latest",
    "RETAG_TAG_TEMPLATE": "{tag}_{timestamp}_{digest:.12}",
    "RETAG_REPOSITORIES": None,
    "RETAG_EXCLUDE_REPOSITORIES": None,
    "PRUNE_SCHEDULE": "0 0 3 * * *",
    "PRUNE_MODE": "dry-run",
    "PRUNE_KEEP": "10",
    "PRUNE_MIN_AGE": "7d",
    "PRUNE_SCOPE": "generated",
    "PRUNE_UNTAGGED": "false",
    "PRUNE_REPOSITORIES": None,
    "PRUNE_CONCURRENCY": "8",
    "PRUNE_MAX_DURATION": "8m",
    "RECONCILE_SCHEDULE": "0 */15 * * * *",
    "RECONCILE_MODE": "apply",
    "RECONCILE_GRACE": "15m",
}

# Read by the code but deliberately not set in Azure, with the reason.
NOT_SET_IN_AZURE = {
    "ACR_CA_BUNDLE": "a private CA for the local emulator; Azure registries use public ones",
}

# Set by the infrastructure from something it computes rather than from a parameter.
COMPUTED = {
    "ACR_LOGIN_SERVER": "the registry's login server",
    "AZURE_CLIENT_ID": "the client id of the app's user-assigned identity",
}

# Prefixes of the settings the application owns (everything else is Functions/Azure plumbing).
APP_PREFIXES = ("ACR_", "RETAG_", "PRUNE_", "RECONCILE_")


def as_setting_text(value: object) -> str | None:
    """A code default as the text an app setting would hold."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def retag_config_settings() -> dict[str, str | None] | None:
    """`retag.config.SETTINGS` as {name: default text}, or None before branch core is merged."""
    try:
        config = importlib.import_module("retag.config")
    except ModuleNotFoundError as error:
        if error.name in ("retag.config", "retag"):
            return None
        raise
    return {
        setting.name: as_setting_text(setting.default)
        for setting in config.SETTINGS
        if setting.name != "AZURE_CLIENT_ID"
    }


def code_settings() -> dict[str, str | None]:
    found = retag_config_settings()
    return dict(EXPECTED_SETTINGS) if found is None else found
