"""Cold start: what `import function_app` costs, against importing the four SDKs eagerly.

Each measurement is a fresh interpreter with `-X importtime`; the figure is the cumulative
microseconds of the top-level import. Medians over RUNS runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import median, report, table

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_RUNS", "7"))
TARGET_MS = 250.0
SDKS = ["azure.functions", "azure.identity", "azure.containerregistry", "azure.eventgrid"]


def import_ms(statement: str, modules: list[str], env: dict[str, str]) -> float:
    """Cumulative import time (ms) of `modules`, summed, in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    total_us = 0
    for line in done.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|", 2)
        if cumulative.strip().isdigit() and name.removeprefix(" ") in modules:
            total_us += int(cumulative)
    return total_us / 1000


def loaded_heavy_sdks(env: dict[str, str]) -> list[str]:
    probe = (
        "import sys, function_app; "
        "heavy = ('azure.identity', 'azure.containerregistry'); "
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return [m for m in done.stdout.strip().split(",") if m]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ca = Path(tmp, "ca.pem")
        ca.write_text("placeholder: only its existence is validated at start-up\n")
        env = {
            **os.environ,
            "ACR_LOGIN_SERVER": "myregistry.azurecr.io",
            "ACR_CA_BUNDLE": str(ca),
            "PYTHONDONTWRITEBYTECODE": "0",
        }
        # Warm the bytecode cache once, so runs measure imports, not compilation.
        import_ms("import function_app", ["function_app"], env)
        app, floor, sdks = [], [], []
        for _ in range(RUNS):  # interleaved, so machine load hits all three alike
            app.append(import_ms("import function_app", ["function_app"], env))
            floor.append(import_ms("import azure.functions", ["azure.functions"], env))
            sdks.append(import_ms("import " + ", ".join(SDKS), SDKS, env))
        heavy = loaded_heavy_sdks(env)
    rows = [
        ["`import function_app` (acr-retag)", f"{median(app):.0f}", f"{min(app):.0f}"],
        ["`import azure.functions` alone (the floor)", f"{median(floor):.0f}", f"{min(floor):.0f}"],
        ["the four SDKs imported eagerly", f"{median(sdks):.0f}", f"{min(sdks):.0f}"],
    ]
    verdict = "met" if median(app) <= TARGET_MS else "NOT met"
    report(
        "Cold start (import time)",
        table(["what is imported", "median ms", "min ms"], rows),
        f"Target: `import function_app` <= {TARGET_MS:.0f} ms ({verdict}); {RUNS} runs each. "
        f"acr-retag's own start-up (its modules, settings validation, the app's three functions) "
        f"costs {median(app) - median(floor):.0f} ms over `azure.functions` alone.\n"
        f"Heavy SDKs loaded by `import function_app`: {', '.join(heavy) or 'none'} "
        "(azure.identity and azure.containerregistry load on the first invocation that writes).",
    )


if __name__ == "__main__":
    main()
