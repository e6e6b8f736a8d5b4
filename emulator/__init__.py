"""Local Azure Container Registry + Event Grid emulator (HTTPS, ACR auth, /v2 + /acr/v1 APIs).

Run it with `python -m emulator serve`, or in-process::

    from emulator import Emulator
    with Emulator() as acr:
        acr.endpoint, acr.login_server, acr.ca_bundle

See emulator/README.md for the API surface, the admin API and the intended differences from ACR.
"""

from emulator.app import Emulator

__all__ = ["Emulator"]
