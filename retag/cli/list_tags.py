"""`acr-retag list REPOSITORY`: a repository's tags, newest first, with kind and lock."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from retag.cli.args import check_repository, json_argument
from retag.cli.errors import EXIT_OK
from retag.cli.output import emit, print_table, when
from retag.cli.tag import load_template
from retag.oci import short_digest

if TYPE_CHECKING:
    from retag.cli.env import Context
    from retag.naming import TagTemplate
    from retag.registry import TagInfo

HELP = "list a repository's tags: digest, last update, kind, lock"
DESCRIPTION = """\
List every tag of REPOSITORY, newest first: short digest, last update (UTC), kind
(source = in RETAG_SOURCE_TAGS, generated = matches RETAG_TAG_TEMPLATE, other) and
whether it is locked (write or delete disabled)."""
EPILOG = """\
examples:
  acr-retag list myapp
  acr-retag list team/api --json | jq '.tags[0]'
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repository", metavar="REPOSITORY")
    parser.add_argument(
        "--template", help="classify with this template instead of RETAG_TAG_TEMPLATE"
    )
    json_argument(parser)


def tag_kind(tag: str, source_tags: Sequence[str], template: TagTemplate) -> str:
    if tag in source_tags:
        return "source"
    if template.is_generated(tag):
        return "generated"
    return "other"


def run(args: argparse.Namespace, ctx: Context) -> int:
    repository = check_repository(args.repository)
    settings = ctx.settings()
    template = load_template(ctx, args.template)
    registry = ctx.registry()
    with ctx.step(f"listing tags of {repository}", "pull"):
        tags: list[TagInfo] = list(registry.list_tags(repository))
    tags.sort(key=lambda t: (t.last_updated_on, t.name), reverse=True)
    source_tags = settings.retag.source_tags
    kinds = [tag_kind(t.name, source_tags, template) for t in tags]
    if args.json:
        rows = [
            {
                "tag": t.name,
                "digest": t.digest,
                "created": when(t.created_on),
                "last_updated": when(t.last_updated_on),
                "kind": kind,
                "locked": t.locked,
                "can_delete": t.can_delete,
                "can_write": t.can_write,
            }
            for t, kind in zip(tags, kinds, strict=True)
        ]
        counts = {k: kinds.count(k) for k in ("source", "generated", "other")}
        data = {"registry": ctx.login_server, "repository": repository, "count": len(rows)}
        emit("list", {**data, **{f"{k}_tags": v for k, v in counts.items()}, "tags": rows})
        return EXIT_OK
    if not tags:
        print(f"{repository}: no tags")
        return EXIT_OK
    print_table(
        ["TAG", "DIGEST", "LAST UPDATED (UTC)", "KIND", "LOCKED"],
        [
            [t.name, short_digest(t.digest), when(t.last_updated_on), kind, _lock(t)]
            for t, kind in zip(tags, kinds, strict=True)
        ],
    )
    return EXIT_OK


def _lock(tag: TagInfo) -> str:
    return "locked" if tag.locked else "-"
