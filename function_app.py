"""Azure Functions entry point (Python v2 programming model). Thin triggers only.

Each trigger decodes its input and calls the use case in `retag/`, which logs one outcome line.
Settings are read and validated once, when the worker imports this module. Heavy SDK imports
(azure.identity, azure.containerregistry) happen lazily in `retag.acr`, on the first invocation
that needs the registry, so importing this module stays cheap on cold start.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import azure.functions as func

from retag.logline import LOGGER, quiet_sdk_logging
from retag.on_push import handle_event
from retag.registry import Registry, time_budget
from retag.settings import Settings, SettingsError, load_settings

app = func.FunctionApp()
log = LOGGER

EVENT_BUDGET_SECONDS = 20.0
"""Registry time for one event, all calls together. Event Grid waits 30 s for an answer, then
redelivers: finishing well inside that keeps one push from running twice at once."""


class SettingsInvalid(RuntimeError):
    """Raised by every invocation while the app settings are invalid, so no event is dropped."""


def _load() -> Settings | SettingsError:
    try:
        return load_settings()
    except SettingsError as error:
        log.error("acr-retag settings invalid: %s", error)
        return error


_settings = _load()
quiet_sdk_logging(None if isinstance(_settings, SettingsError) else _settings.sdk_log_level)


def settings() -> Settings:
    if isinstance(_settings, SettingsError):
        raise SettingsInvalid(f"acr-retag settings invalid: {_settings}")
    return _settings


def registry() -> Registry:
    """The process-wide registry client; built (and the Azure SDK imported) on first use."""
    from retag.acr.client import registry_for

    return registry_for(settings().registry)


def event_envelope(event: func.EventGridEvent | func.CloudEvent) -> Mapping[str, Any]:
    """The raw event as a dict again, in its own schema, from what the worker decoded."""
    if isinstance(event, func.CloudEvent):
        return {
            "specversion": event.specversion,
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "subject": event.subject,
            "time": _iso(event.time),
            "data": event.get_json(),
        }
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "eventTime": _iso(event.event_time),
        "dataVersion": event.data_version,
        "data": event.get_json(),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


@app.function_name("on_image_pushed")
@app.event_grid_trigger(arg_name="event")
def on_image_pushed(event: func.EventGridEvent) -> None:
    """ImagePushed -> a unique, sortable tag on the same digest. Raises only to be redelivered.

    `handle_event` logs the one outcome line (logger `retag`).
    """
    with time_budget(EVENT_BUDGET_SECONDS):
        handle_event(event_envelope(event), settings(), registry)


@app.function_name("prune_tags")
@app.timer_trigger(
    arg_name="timer", schedule="%PRUNE_SCHEDULE%", run_on_startup=False, use_monitor=True
)
def prune_tags(timer: func.TimerRequest) -> None:
    """Deletes old generated tags per PRUNE_MODE (dry-run by default); protected items never."""
    from retag.prune.job import raise_if_failed, run_scheduled_prune

    # Logged first (ERROR when not ok), then raised: the host records a failed invocation.
    raise_if_failed(run_scheduled_prune(settings(), registry, past_due=timer.past_due, log=log))


@app.function_name("reconcile_tags")
@app.timer_trigger(
    arg_name="timer", schedule="%RECONCILE_SCHEDULE%", run_on_startup=False, use_monitor=True
)
def reconcile_tags(timer: func.TimerRequest) -> None:
    """Level-triggered catch-up: the newest generated tag is on each source tag's digest."""
    from retag.reconcile.job import raise_if_failed, run_scheduled_reconcile

    # Logged first (ERROR when not ok), then raised: the host records a failed invocation.
    raise_if_failed(run_scheduled_reconcile(settings(), registry, log=log, past_due=timer.past_due))
