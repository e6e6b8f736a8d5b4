"""Settings layering for the CLI, and the settings and registry a command runs with.

Sources, strongest first: `--registry` (ACR_LOGIN_SERVER only), the process environment, a
`.env` file (`--env-file PATH`, else `./.env` when it exists), the settings' defaults. The
environment wins over the file so that a value a CI system exports is never silently replaced by
a stale file. A relative path in the file (`ACR_CA_BUNDLE=.cache/emulator/ca.pem`) is relative
to the file's folder, not to the working directory.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from retag.cli.errors import CliError, registry_step, usage_error
from retag.logline import one_line

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from retag.acr.client import AcrRegistry
    from retag.registry import Need, Registry
    from retag.settings import Settings

DEFAULT_ENV_FILE = ".env"
PATH_SETTINGS = frozenset(
    {"ACR_CA_BUNDLE", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE"}
)
"""Settings whose value is a file path: relative values in a .env file are resolved against the
file's folder."""


def env_file_path(env_file: str | None) -> Path:
    return Path(env_file) if env_file else Path(DEFAULT_ENV_FILE)


def read_env_file(env_file: str | None) -> dict[str, str]:
    """The values of `--env-file PATH`, else of ./.env when it exists, else nothing; relative
    paths (`PATH_SETTINGS`) resolved against the file's folder."""
    from retag.cli.dotenv import DotenvError, parse_dotenv

    path = env_file_path(env_file)
    if not env_file and not path.is_file():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else one_line(exc)
        raise usage_error(f"cannot read env file {path}: {reason}") from exc
    try:
        values = parse_dotenv(text, source=str(path))
    except DotenvError as exc:
        raise usage_error(f"env file {exc}") from exc
    folder = path.resolve().parent
    for key in PATH_SETTINGS & values.keys():
        if values[key] and not Path(values[key]).is_absolute():
            values[key] = str(folder / values[key])
    return values


def merged_environment(
    explicit: Mapping[str, str], env_file: str | None, registry: str | None
) -> dict[str, str]:
    """.env file < explicit environment < `--registry`."""
    values = read_env_file(env_file)
    values.update(explicit)
    if registry is not None:
        values["ACR_LOGIN_SERVER"] = registry
    return values


def export_azure_variables(file_values: Mapping[str, str]) -> None:
    """DefaultAzureCredential reads AZURE_* (AZURE_CLIENT_ID, AZURE_TENANT_ID, ...) from the
    process environment: give it those from the .env file, unless already set there."""
    for key, value in file_values.items():
        if key.startswith("AZURE_") and key not in os.environ:
            os.environ[key] = value


@dataclass
class Context:
    """What a command runs with: settings and registry, loaded on first use."""

    args: argparse.Namespace
    env: Mapping[str, str] | None
    credential: TokenCredential | None = None
    """Replaces ACR_CREDENTIAL when set (tests and embedding); settings are still validated."""
    _settings: Settings | None = None
    _registry: AcrRegistry | None = None
    _environment: dict[str, str] | None = None

    @property
    def command(self) -> str:
        return str(getattr(self.args, "command", None) or "")

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    def environment(self) -> dict[str, str]:
        if self._environment is None:
            self._environment = merged_environment(
                os.environ if self.env is None else self.env,
                getattr(self.args, "env_file", None),
                getattr(self.args, "registry", None),
            )
        return self._environment

    def settings(self) -> Settings:
        if self._settings is None:
            from retag.logline import quiet_sdk_logging
            from retag.settings import SettingsError, load_settings

            try:
                self._settings = load_settings(self.environment())
            except SettingsError as exc:
                raise usage_error(f"settings: {one_line(exc)}{self._looked_for(exc)}") from exc
            quiet_sdk_logging(self._settings.sdk_log_level)
        return self._settings

    def _looked_for(self, exc: Exception) -> str:
        """When a required setting is missing: which .env was read, or looked for and not found."""
        from retag.settings import SETTINGS

        setting = getattr(exc, "setting", None)
        required = {s.name for s in SETTINGS if s.default is None}
        if setting not in required or self.environment().get(str(setting)):
            return ""
        path = env_file_path(getattr(self.args, "env_file", None)).resolve()
        if path.is_file():
            return f" (not in the environment nor in {path})"
        return f" (not in the environment; no .env file at {path}; pass --env-file PATH)"

    def registry(self) -> AcrRegistry:
        if self._registry is None:
            settings = self.settings()
            from retag.acr.client import AcrRegistry

            reg = settings.registry
            if self.env is None:  # a real process: the SDK reads os.environ itself
                export_azure_variables(read_env_file(getattr(self.args, "env_file", None)))
            try:
                if self.credential is None:
                    self._registry = AcrRegistry.from_settings(reg)
                else:
                    self._registry = AcrRegistry(
                        reg.login_server,
                        credential=self.credential,
                        audience=reg.audience,
                        ca_bundle=reg.ca_bundle,
                    )
            except ValueError as exc:
                raise usage_error(f"settings: {one_line(exc)}") from exc
        return self._registry

    @property
    def login_server(self) -> str:
        return self.settings().registry.login_server

    @property
    def anonymous(self) -> bool:
        return self.settings().registry.credential == "anonymous" and self.credential is None

    def step(self, action: str, need: Need) -> AbstractContextManager[None]:
        return registry_step(action, need, self.login_server, anonymous=self.anonymous)

    def run_engine(
        self,
        action: str,
        need: Need,
        execute: Callable[[argparse.Namespace, Settings, Registry], int],
    ) -> int:
        """Run an engine command (`prune`, `reconcile`) with these settings and registry."""
        settings = self.settings()
        registry = self.registry()
        with self.step(action, need):
            return execute(self.args, settings, registry)

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()
            self._registry = None


__all__ = ["CliError", "Context", "export_azure_variables", "merged_environment"]
