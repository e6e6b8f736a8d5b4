"""The ONE list of intended differences between the emulator and distribution (the reference).

Differential tests compare every step field by field. A step listed here may differ in exactly the
listed fields, and each target must then show exactly the recorded value (so the difference is
pinned, not ignored). Anything not listed must be identical. Keys are step names used by the tests.

Why distribution is the reference: it is the CNCF registry implementation, the emulator imitates
ACR, and ACR speaks the same /v2 protocol. Where ACR deliberately behaves differently from
distribution (and the emulator follows ACR), the difference is recorded here with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Difference:
    reason: str
    # field -> {target name -> value that target must show}
    fields: Mapping[str, Mapping[str, object]]


INTENDED: dict[str, Difference] = {}
