"""Azure Functions entry point (Python v2 programming model). Thin triggers only.

Each trigger decodes its input, calls the use case in `retag/`, and logs one outcome line.
Heavy SDK imports (azure.identity, azure.containerregistry) happen lazily inside `retag.acr`,
so importing this module stays cheap on cold start.
"""

import azure.functions as func

app = func.FunctionApp()
