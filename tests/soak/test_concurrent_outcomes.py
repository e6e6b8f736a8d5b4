"""Regression (found by the soak): the outcome line's `requests=` counts only this event's requests.

The Functions worker runs invocations concurrently on threads and they share one process-wide
`AcrRegistry`. The count used to be the difference of the adapter's global `requests_made`
before and after the event, so it included the requests of every event running at the same time
(the soak logged `requests=105` for a re-tag that sent 2).
"""

from __future__ import annotations

import copy
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from emulator import Emulator
from retag.acr.client import AcrRegistry
from retag.on_push import handle_event
from retag.registry import note_request, tally_requests
from retag.settings import load_settings
from tests.support.function_app import emulator_settings
from tests.support.images import oci_image, push_image

REPO = "concurrent/app"


def test_concurrent_events_each_report_their_own_four_requests() -> None:
    """Each event is a push to its own repository (concurrent pushes to one repository would
    supersede each other): the repository's token, then the new tag's 3 requests (the tags on
    the digest and the manifest at once, then the PUT)."""
    with Emulator() as acr:
        events = []
        for number in range(17):
            image = oci_image()
            before = len(acr.events())
            repository = f"{REPO}{number}"
            push_image(acr.endpoint, repository, image, tag="latest", verify=acr.ca_bundle)
            events.append(copy.deepcopy(acr.events()[before:][-1]))
            acr.advance_clock(1)
        settings = load_settings(emulator_settings(acr))
        acr.clear_requests()  # from here on, the log holds exactly what the adapter sends
        with AcrRegistry(acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle) as reg:
            warm_up = handle_event(events[0], settings, lambda: reg)  # challenges, tokens
            assert warm_up.status == "retagged"
            acr.set_faults(latency_ms=20)  # so that the events overlap

            def handle(event: dict[str, object]) -> tuple[str, int]:
                outcome = handle_event(event, settings, lambda: reg)
                return outcome.status, outcome.requests

            with ThreadPoolExecutor(max_workers=8) as pool:
                results = list(pool.map(handle, events[1:]))
            acr.clear_faults()
        expected = warm_up.requests + 4 * 16
        deadline = time.monotonic() + 5  # the emulator logs a request just after answering it
        while len(acr.requests()) < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        total = len(acr.requests())
    assert results == [("retagged", 4)] * 16
    assert total == expected


def test_the_tally_counts_this_thread_only_and_nests() -> None:
    seen: list[int] = []

    def other_thread() -> None:
        with tally_requests() as tally:
            note_request()
            seen.append(tally.count)

    with tally_requests() as outer:
        note_request()
        with tally_requests() as inner:
            note_request()
            note_request()
            worker = threading.Thread(target=other_thread)
            worker.start()
            worker.join()
        note_request()
    note_request()  # outside any tally: counted nowhere, no error
    assert (outer.count, inner.count, seen) == (4, 2, [1])


def test_outcome_line_reports_the_tally() -> None:
    with Emulator() as acr:
        image = oci_image()
        before = len(acr.events())
        push_image(acr.endpoint, REPO, image, tag="latest", verify=acr.ca_bundle)
        event = acr.events()[before:][-1]
        acr.clear_requests()
        settings = load_settings(emulator_settings(acr))
        with AcrRegistry(acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle) as reg:
            outcome = handle_event(event, settings, lambda: reg)
        assert outcome.requests == len(acr.requests())  # cold: challenges and token calls too
        assert outcome.requests > 2
    assert re.search(rf"\brequests={outcome.requests}\b", outcome.log_line())
