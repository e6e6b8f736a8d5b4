"""Shared constants for the fidelity facts (values copied from the cited recordings)."""

from __future__ import annotations

UNAUTHORIZED = (
    "authentication required, visit https://aka.ms/acr/authorization for more information."
)


def challenge(login_server: str, scope: str | None, error: str | None = None) -> str:
    """The WWW-Authenticate value ACR sends (format of every recorded 401)."""
    value = f'Bearer realm="https://{login_server}/oauth2/token",service="{login_server}"'
    if scope is not None:
        value += f',scope="{scope}"'
    if error is not None:
        value += f',error="{error}"'
    return value
