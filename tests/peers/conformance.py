"""Run the OCI distribution-spec conformance suite and read its JUnit report.

The suite (pinned in tests/support/gotools.py) is configured by environment variables (its
README, "Environment Variables"); it writes `junit.xml`, `results.yaml` and `report.html` into
`OCI_RESULTS_DIR`. A JUnit `testcase` is a leaf of the suite's tree, named
`OCI Conformance Test/<area>/.../<case>`; names repeat (one case per blob of an image), so
results are counted, not keyed. `status` is passed, skipped (skip or disabled), failure or error.
"""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.differential.differences import ConformanceFailure

PREFIX = "OCI Conformance Test/"
FAILED = frozenset({"failure", "error"})
RUN_TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class Case:
    name: str  # without PREFIX
    status: str  # passed | skipped | failure | error
    message: str  # the suite's error text for the case ("" when it passed)

    @property
    def area(self) -> str:
        return self.name.split("/", 1)[0]


def run_suite(
    binary: Path, workdir: Path, settings: Mapping[str, str]
) -> tuple[list[Case], subprocess.CompletedProcess[str]]:
    """Run the suite in `workdir` with only our OCI_* settings; return its cases and process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCI_")}
    results = workdir / "results"
    env.update(settings)
    env["OCI_RESULTS_DIR"] = str(results)
    done = subprocess.run(
        [str(binary)],
        cwd=workdir,  # no stray oci-conformance.yaml is picked up from elsewhere
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )
    report = results / "junit.xml"
    if not report.is_file():
        raise AssertionError(
            f"the suite wrote no junit.xml (exit {done.returncode}):\n{done.stderr[-3000:]}"
        )
    return parse_junit(report), done


def parse_junit(path: Path) -> list[Case]:
    cases = []
    for element in ET.parse(path).getroot().iter("testcase"):
        name = element.get("name", "")
        cases.append(
            Case(
                name=name.removeprefix(PREFIX),
                status=element.get("status", "error"),
                message=(element.findtext("system-out") or "").strip(),
            )
        )
    return cases


@dataclass(frozen=True)
class Verdict:
    unexpected_failures: list[Case]
    unexpected_passes: list[tuple[Case, ConformanceFailure]]
    ambiguous: list[Case]  # matched by more than one entry
    stale: list[ConformanceFailure]  # entries matching no failure
    expected: Counter[int]  # entry index -> failures it accounts for

    @property
    def ok(self) -> bool:
        return not (self.unexpected_failures or self.unexpected_passes or self.ambiguous) and (
            not self.stale
        )


def judge(cases: Iterable[Case], table: Sequence[ConformanceFailure]) -> Verdict:
    unexpected_failures: list[Case] = []
    unexpected_passes: list[tuple[Case, ConformanceFailure]] = []
    ambiguous: list[Case] = []
    expected: Counter[int] = Counter()
    for case in cases:
        matches = [i for i, entry in enumerate(table) if entry.pattern.fullmatch(case.name)]
        if len(matches) > 1:
            ambiguous.append(case)
        if case.status in FAILED:
            if matches:
                expected[matches[0]] += 1
            else:
                unexpected_failures.append(case)
        elif case.status == "passed" and matches:
            unexpected_passes.append((case, table[matches[0]]))
    stale = [entry for i, entry in enumerate(table) if not expected[i]]
    return Verdict(unexpected_failures, unexpected_passes, ambiguous, stale, expected)


def summary_table(cases: Sequence[Case], verdict: Verdict) -> str:
    """Per area: passed / failed (of which expected) / skipped, in the suite's order."""
    areas: dict[str, Counter[str]] = {}
    for case in cases:
        counts = areas.setdefault(case.area, Counter())
        counts["failed" if case.status in FAILED else case.status] += 1
    unexpected = Counter(c.area for c in verdict.unexpected_failures)
    rows = [("AREA", "PASSED", "FAILED", "UNEXPECTED", "SKIPPED")]
    total: Counter[str] = Counter()
    for area, counts in areas.items():
        total.update(counts)
        rows.append(
            (
                area,
                str(counts["passed"]),
                str(counts["failed"]),
                str(unexpected[area]),
                str(counts["skipped"]),
            )
        )
    rows.append(
        (
            "total",
            str(total["passed"]),
            str(total["failed"]),
            str(len(verdict.unexpected_failures)),
            str(total["skipped"]),
        )
    )
    width = max(len(r[0]) for r in rows)
    lines = [f"{r[0]:<{width}}  {r[1]:>6}  {r[2]:>6}  {r[3]:>10}  {r[4]:>7}" for r in rows]
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return "\n".join(lines)


def explain(verdict: Verdict) -> str:
    parts = []
    for case in verdict.unexpected_failures:
        parts.append(f"unexpected failure: {case.name}: {case.message[:300]}")
    for case, entry in verdict.unexpected_passes:
        parts.append(f"unexpected pass (listed as failing: {entry.pattern.pattern}): {case.name}")
    for case in verdict.ambiguous:
        parts.append(f"matched by several CONFORMANCE_EXPECTED_FAILURES entries: {case.name}")
    for entry in verdict.stale:
        parts.append(f"entry matches no failure (remove it?): {entry.pattern.pattern}")
    return "\n".join(parts)
