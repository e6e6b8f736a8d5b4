"""Suite-wide test configuration.

Hypothesis: under CI (`CI=true`, as `.ci/run` runs) the property tests are derandomized, so a
submission's result depends on its code, not on the seed a run happened to draw; locally every
run explores new examples. Either way a failure prints the example that reproduces it.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI", "").lower() in {"1", "true"} else "dev")
