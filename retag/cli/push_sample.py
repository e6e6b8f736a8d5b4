"""`acr-retag push-sample REPOSITORY[:TAG]`: push a tiny random image (config + one layer)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from retag.cli.args import json_argument, split_reference
from retag.cli.errors import EXIT_OK
from retag.cli.output import emit

if TYPE_CHECKING:
    from retag.cli.env import Context

HELP = "push a tiny random image (config + one layer)"
DESCRIPTION = """\
Push a tiny image with random content to REPOSITORY[:TAG] (default tag latest) with
the SDK's blob upload and manifest PUT. Prints its digest. With a deployed Function,
pushing to a source tag should make a generated tag appear within a second."""
EPILOG = """\
examples:
  acr-retag push-sample sandbox/retag-check
  acr-retag push-sample sandbox/retag-check:latest --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reference", metavar="REPOSITORY[:TAG]")
    json_argument(parser)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from retag.sample import sample_image

    repository, tag = split_reference(args.reference)
    registry = ctx.registry()
    image = sample_image()
    with ctx.step(f"pushing {repository}:{tag}", "push"):
        digest = registry.push_image(repository, tag, image.config, image.layers)
    if args.json:
        data = {"registry": ctx.login_server, "repository": repository, "tag": tag}
        emit("push-sample", {**data, "digest": digest})
    else:
        print(digest)
    return EXIT_OK
