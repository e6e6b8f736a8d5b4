"""The application settings the code reads (retag.config.SETTINGS), for comparing with what the
infrastructure sets."""

from __future__ import annotations

from retag.settings import SETTINGS

# Read by the code but deliberately not set in Azure, with the reason.
NOT_SET_IN_AZURE = {
    "ACR_CA_BUNDLE": "a private CA for the local emulator; Azure registries use public ones",
    "RETAG_SDK_LOG_LEVEL": "a debugging switch; the default (WARNING) is what Azure should run",
}

# Set by the infrastructure from something it computes rather than from a parameter.
COMPUTED = {
    "ACR_LOGIN_SERVER": "the registry's login server",
    "AZURE_CLIENT_ID": "the client id of the app's user-assigned identity",
    "FLUX_RECEIVER_TOKEN": "a Key Vault reference built from FLUX_RECEIVER_TOKEN_SECRET_URI",
    "RETAG_EVENTS_TOPIC": "the endpoint of the audit topic (AZURE_EVENTS_TOPIC_*)",
}

# Prefixes of the settings the application owns (everything else is Functions/Azure plumbing).
APP_PREFIXES = ("ACR_", "RETAG_", "PRUNE_", "RECONCILE_")


def as_setting_text(value: object) -> str | None:
    """A code default as the text an app setting would hold (None: no default, or empty)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def code_settings() -> dict[str, str | None]:
    """{name: default} of every setting retag/config.py reads, except AZURE_CLIENT_ID."""
    return {
        setting.name: as_setting_text(setting.default)
        for setting in SETTINGS
        if setting.name != "AZURE_CLIENT_ID"
    }
