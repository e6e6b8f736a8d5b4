"""Command line: `python -m emulator serve [...]` (other subcommands register in COMMANDS)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType

from emulator.app import Emulator


def _add_serve(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("serve", help="serve the emulator until SIGINT/SIGTERM")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default 0: any free port)")
    parser.add_argument(
        "--data",
        metavar="DIR",
        default=None,
        help="persist registry state (and the CA) in DIR across restarts; default: a temp dir",
    )
    parser.add_argument(
        "--subscriber",
        metavar="URL",
        action="append",
        default=[],
        help="Event Grid webhook (loopback http URL) for ImagePushed/ImageDeleted; repeatable",
    )
    parser.add_argument(
        "--no-anonymous",
        action="store_true",
        help="refuse anonymous tokens (grant_type=password); a credential is then required",
    )
    parser.add_argument(
        "--anonymous-actions",
        metavar="LIST",
        default=None,
        help="comma-separated actions anonymous tokens may get (e.g. pull; default: all)",
    )
    parser.add_argument(
        "--no-blob-redirect",
        action="store_true",
        help="serve blob downloads from the registry itself instead of a 307 to the storage "
        "listener (ACR redirects; use this for clients that cannot follow redirects)",
    )
    parser.set_defaults(run=serve)


def serve(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        emulator = Emulator(
            anonymous=not args.no_anonymous,
            anonymous_actions=(
                None
                if args.anonymous_actions is None
                else [a.strip() for a in args.anonymous_actions.split(",") if a.strip()]
            ),
            data_dir=args.data,
            subscribers=args.subscriber,
            host=args.host,
            port=args.port,
            blob_redirect=not args.no_blob_redirect,
        ).start()
    except (ValueError, OSError) as exc:
        print(f"emulator: {exc}", file=sys.stderr)
        return 2
    try:
        line = {
            "endpoint": emulator.endpoint,
            "login_server": emulator.login_server,
            "ca_bundle": emulator.ca_bundle,
            "storage_endpoint": emulator.storage_endpoint,
            "topic_endpoint": emulator.topic_endpoint,
            "topic_key": emulator.topic_key,
        }
        print(json.dumps(line), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


def _add_demo(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the main job end to end on the emulator (what `make demo` runs)"
    )
    parser.set_defaults(run=demo)


def demo(args: argparse.Namespace) -> int:
    from emulator.demo import run

    return run()


# Subcommand name -> function adding its parser (set `run` via set_defaults).
COMMANDS: dict[str, Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = {
    "serve": _add_serve,
    "demo": _add_demo,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS.values():
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
