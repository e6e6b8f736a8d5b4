"""`acr-retag tag REPOSITORY`: the push approach, a pipeline step that adds the generated tag."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from retag.cli.args import check_digest, check_repository, check_tag, json_argument
from retag.cli.errors import EXIT_OK, CliError, usage_error
from retag.cli.output import emit, when
from retag.logline import one_line
from retag.oci import short_digest

if TYPE_CHECKING:
    from retag.cli.env import Context
    from retag.naming import TagTemplate

HELP = "add a generated tag to the digest a source tag points to (pipeline step)"
DESCRIPTION = """\
Resolve the source tag to its digest once, then give that push its generated tag with
the same engine and template as the Function: when the digest already carries the newest
generated tag (the Function got there first, or this ran before) nothing is written and
that tag is printed. {timestamp} is the source tag's lastUpdateTime (its push time); with
--digest it is the current time. Prints the tag."""
EPILOG = """\
examples:
  acr-retag tag myapp            # after docker push myregistry.azurecr.io/myapp:latest
  acr-retag tag team/api --source-tag stable --json
  acr-retag tag myapp --digest sha256:3f2a...  # tag this exact digest, timestamp now
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repository", metavar="REPOSITORY")
    parser.add_argument(
        "--source-tag",
        metavar="TAG",
        help="tag to resolve and {tag} in the template (default: first of RETAG_SOURCE_TAGS)",
    )
    parser.add_argument(
        "--digest", metavar="sha256:HEX", help="tag this digest instead of resolving"
    )
    parser.add_argument("--template", help="override RETAG_TAG_TEMPLATE, e.g. '{tag}-{timestamp}'")
    json_argument(parser)


def load_template(
    ctx: Context, text: str | None, extra_source_tags: Sequence[str] = ()
) -> TagTemplate:
    """The settings' template, or `--template`, validated against every source tag involved."""
    from retag.naming import TagTemplate

    settings = ctx.settings()
    source_tags = tuple(dict.fromkeys([*settings.retag.source_tags, *extra_source_tags]))
    if text is None and set(source_tags) == set(settings.retag.source_tags):
        return settings.retag.template
    try:
        return TagTemplate.parse(
            settings.retag.template.text if text is None else text, source_tags
        )
    except ValueError as exc:
        option = "--template" if text is not None else "RETAG_TAG_TEMPLATE"
        raise usage_error(f"{option}: {one_line(exc)}") from exc


def run(args: argparse.Namespace, ctx: Context) -> int:
    repository = check_repository(args.repository)
    settings = ctx.settings()
    source_tag = check_tag(args.source_tag or settings.retag.source_tags[0])
    digest = check_digest(args.digest) if args.digest else None
    template = load_template(ctx, args.template, [source_tag])
    registry = ctx.registry()

    from retag.tagging import Push, tag_push

    if digest is None:
        with ctx.step(f"reading tag {repository}:{source_tag}", "pull"):
            info = registry.get_tag(repository, source_tag)
        digest, pushed_at, basis = info.digest, info.last_updated_on, "source tag lastUpdateTime"
    else:
        pushed_at, basis = datetime.now(UTC), "now (--digest)"
    render = template.preview if template.label_names else template.render
    new_tag = render(source_tag, pushed_at, digest)
    with ctx.step(f"tagging {repository}@{short_digest(digest)} as {new_tag}", "push"):
        # Exactly the Function's call: one generated tag per push, whoever tags it first.
        tagged = tag_push(registry, template, Push(repository, source_tag, digest, pushed_at))
    if tagged.superseded:
        raise CliError(
            f"{repository}:{source_tag} does not point to {short_digest(digest)}: nothing written "
            "(a generated tag there would make Flux deploy it; push the image to the source tag)"
        )
    if tagged.skipped:
        raise CliError(f"{repository}@{short_digest(digest)}: {tagged.reason}; nothing written")
    result = tagged.tag
    announced = None
    if tagged.written:
        from retag.announce import announce
        from retag.audit import TagAddedEvent

        added = TagAddedEvent(ctx.login_server, repository, source_tag, digest, result, pushed_at)
        announced = announce(settings.notify, added, ca_bundle=settings.registry.ca_bundle)
        for channel, why in (("nudge", announced.nudge_reason), ("audit", announced.audit_reason)):
            if why:
                print(
                    f"acr-retag: warning: {channel} failed: {why} (the tag is written)",
                    file=sys.stderr,
                )
    if args.json:
        emit(
            "tag",
            {
                "registry": ctx.login_server,
                "repository": repository,
                "source_tag": source_tag,
                "digest": digest,
                "tag": result,
                "written": tagged.written,
                "timestamp": when(pushed_at),
                "timestamp_source": basis,
                **(announced.fields() if announced is not None else {}),
            },
        )
    else:
        print(result)
    return EXIT_OK
