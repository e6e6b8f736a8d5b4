"""`acr-retag flux-manifests REPOSITORY`: ready-to-apply Flux YAML for the configured template."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from retag.cli.args import check_repository, check_tag, json_argument
from retag.cli.errors import EXIT_OK, usage_error, warn
from retag.cli.output import emit
from retag.cli.tag import load_template
from retag.logline import one_line

if TYPE_CHECKING:
    from retag.cli.env import Context

HELP = "print the Flux ImageRepository, ImagePolicies (and Receiver) for a repository"
DESCRIPTION = """\
Print ready-to-apply YAML (one document per object, `---`) for REPOSITORY: an ImageRepository
(provider: azure, image <ACR_LOGIN_SERVER>/REPOSITORY), one ImagePolicy per source tag whose
filterTags.pattern matches exactly the tags RETAG_TAG_TEMPLATE generates for it (extract $ts,
alphabetical asc), and, when FLUX_RECEIVER_URL is set, a generic-hmac Receiver for the
ImageRepository with a comment on creating its Secret (the token is never printed).
Needs Flux 2.7 or later (image.toolkit.fluxcd.io/v1). Reads settings only: no registry call."""
EPILOG = """\
examples:
  acr-retag flux-manifests myapp | kubectl apply -f -
  acr-retag flux-manifests team/api --source-tag stable --namespace flux-system --interval 1m
  acr-retag flux-manifests myapp --template 'prod-{revision:.7}-{timestamp}' > flux/myapp.yaml
  acr-retag flux-manifests myapp --json | jq -r .yaml
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from retag.flux_objects import DEFAULT_INTERVAL, DEFAULT_NAMESPACE

    parser.add_argument("repository", metavar="REPOSITORY")
    parser.add_argument("--template", help="the template to match instead of RETAG_TAG_TEMPLATE")
    parser.add_argument(
        "--source-tag",
        metavar="TAG",
        action="append",
        dest="source_tags",
        help="one ImagePolicy for this source tag (repeatable; default: every RETAG_SOURCE_TAGS)",
    )
    parser.add_argument(
        "--namespace",
        default=DEFAULT_NAMESPACE,
        help=f"namespace of the objects (default {DEFAULT_NAMESPACE})",
    )
    parser.add_argument(
        "--name",
        help="ImageRepository (and Receiver) name; policies are NAME-<tag> "
        "(default: derived from REPOSITORY, e.g. team/api -> team-api)",
    )
    parser.add_argument(
        "--interval",
        default=DEFAULT_INTERVAL,
        help=f"ImageRepository scan interval, e.g. 1m, 1h30m (default {DEFAULT_INTERVAL})",
    )
    json_argument(parser)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from retag.flux_objects import flux_objects

    repository = check_repository(args.repository)
    settings = ctx.settings()
    chosen = args.source_tags or list(settings.retag.source_tags)
    source_tags = list(dict.fromkeys(check_tag(tag) for tag in chosen))
    template = load_template(ctx, args.template, source_tags)
    for tag in source_tags:
        if tag not in settings.retag.source_tags:
            warn(
                f"source tag {tag!r} is not in RETAG_SOURCE_TAGS "
                f"({','.join(settings.retag.source_tags)}): acr-retag gives its pushes no "
                "tag, so its ImagePolicy selects nothing until you add it there"
            )
    if not template.has_tag and len(source_tags) > 1:
        warn(
            f"template {template.text!r} has no {{tag}}: the ImagePolicies of "
            f"{', '.join(source_tags)} select the same tags; add {{tag}} to tell them apart"
        )
    receiver = settings.notify.flux_receiver_url is not None
    try:
        printed = flux_objects(
            login_server=ctx.login_server,
            repository=repository,
            template=template,
            source_tags=source_tags,
            namespace=args.namespace,
            name=args.name,
            interval=args.interval,
            receiver=receiver,
        )
    except ValueError as exc:
        raise usage_error(one_line(exc)) from exc
    if args.json:
        emit(
            "flux-manifests",
            {
                "registry": ctx.login_server,
                "repository": repository,
                "namespace": args.namespace,
                "template": template.text,
                "source_tags": source_tags,
                "receiver": receiver,
                "manifests": list(printed.objects),
                "yaml": printed.yaml,
            },
        )
    else:
        print(printed.yaml, end="")
    return EXIT_OK
