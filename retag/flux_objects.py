"""The Flux objects `acr-retag flux-manifests` prints, and the YAML they print as. Pure, no I/O.

For one repository: an ImageRepository (`provider: azure`), one ImagePolicy per source tag whose
`filterTags.pattern` is `TagTemplate.flux_pattern(tag)` (`extract: '$ts'`, `alphabetical: asc`,
the ordering docs/flux.md explains), and, when a Receiver URL is configured, a notification-
controller `generic-hmac` Receiver for the ImageRepository. API versions:
`image.toolkit.fluxcd.io/v1` (GA in Flux 2.7, image-reflector-controller v1.0.0) and
`notification.toolkit.fluxcd.io/v1` (Flux 2.0 and later).

Names are Kubernetes DNS-1123 labels (lowercase letters, digits and `-`, at most 63 characters):
derived from the repository (`team/api` -> `team-api`), deterministic, and when a name has to be
cut a hash of what it was cut from keeps it unique.

The YAML is written by hand (no YAML library at runtime): every string scalar is a JSON string,
which is a valid YAML double-quoted scalar, so no value can change the document's structure.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from retag.naming import TagTemplate

IMAGE_API = "image.toolkit.fluxcd.io/v1"
NOTIFICATION_API = "notification.toolkit.fluxcd.io/v1"
DEFAULT_NAMESPACE = "flux-system"
DEFAULT_INTERVAL = "5m"
NAME_MAX = 63
SIGNATURE_EXCLUSION = r"^.*\.sig$"
"""The controller's default `exclusionList` entry (cosign signature tags), kept when ours
replaces it."""

_NAME_RE = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
_GO_DURATION_RE = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h))+")
"""The `interval` pattern of the Flux CRDs (Go `time.ParseDuration` units, no days)."""
_PLAIN_KEY_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_HASH_LENGTH = 8


# -- names --------------------------------------------------------------------------------------


def name_problem(name: str) -> str | None:
    """Why `name` is not a DNS-1123 label of at most 63 characters, or None."""
    if not name:
        return "is empty"
    if len(name) > NAME_MAX:
        return f"is {len(name)} characters long (at most {NAME_MAX})"
    if _NAME_RE.fullmatch(name) is None:
        return (
            "is not a Kubernetes name (DNS-1123 label: lowercase letters, digits and '-', "
            "starting and ending with a letter or digit)"
        )
    return None


def kubernetes_name(text: str, *, hashed: str | None = None) -> str:
    """A DNS-1123 label for `text`: lowercased, every run of other characters turned into one
    `-`, trimmed; cut to 63 characters with `-<8 hex of sha256(hashed or text)>` when longer.
    Deterministic; raises ValueError when nothing usable is left."""
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if not base:
        raise ValueError(f"{text!r} has no letter or digit to name a Kubernetes object after")
    if len(base) > NAME_MAX:
        digest = hashlib.sha256((hashed or text).encode()).hexdigest()[:_HASH_LENGTH]
        base = base[: NAME_MAX - _HASH_LENGTH - 1].rstrip("-") + "-" + digest
    return base


def policy_name(base: str, source_tag: str) -> str:
    """`<base>-<source tag>`, a DNS-1123 label (cut with a hash when longer than 63)."""
    return kubernetes_name(f"{base}-{source_tag}", hashed=f"{base}\n{source_tag}")


def duration_problem(text: str) -> str | None:
    """Why `text` is not a Flux `interval` (`30s`, `5m`, `1h30m`; at least 1s), or None."""
    if _GO_DURATION_RE.fullmatch(text) is None:
        return "is not a duration like 30s, 5m or 1h30m (units ms, s, m, h; no days)"
    if all(float(n) == 0 for n in re.findall(r"[0-9]+(?:\.[0-9]+)?", text)):
        return "is zero"
    return None


def _re2_literal(text: str) -> str:
    """A tag (only [A-Za-z0-9._-]) as an RE2 literal."""
    return text.replace(".", r"\.")


# -- the objects --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Receiver:
    """The generic-hmac Receiver to print (no token: only the Secret's name)."""

    name: str
    secret_name: str


@dataclass(frozen=True)
class FluxObjects:
    """What `flux-manifests` prints: the objects in order, and a comment for some of them."""

    objects: tuple[dict[str, Any], ...]
    comments: tuple[tuple[str, ...], ...]
    """Comment lines printed above each object (same order as `objects`)."""

    @property
    def yaml(self) -> str:
        return yaml_documents(self.objects, self.comments)


def flux_objects(
    *,
    login_server: str,
    repository: str,
    template: TagTemplate,
    source_tags: Sequence[str],
    namespace: str = DEFAULT_NAMESPACE,
    name: str | None = None,
    interval: str = DEFAULT_INTERVAL,
    receiver: bool = False,
) -> FluxObjects:
    """The ImageRepository, one ImagePolicy per source tag and (with `receiver`) the Receiver.

    Raises ValueError for a bad namespace, name or interval, a template Flux cannot order (no
    {timestamp}), or source tags whose policy names would collide.
    """
    for what, value in (("namespace", namespace), ("name", name)):
        problem = None if value is None else name_problem(value)
        if problem is not None:
            raise ValueError(f"{what} {value!r} {problem}")
    problem = duration_problem(interval)
    if problem is not None:
        raise ValueError(f"interval {interval!r} {problem}")
    if not source_tags:
        raise ValueError("at least one source tag is needed")
    base = name or kubernetes_name(repository)
    image = f"{login_server}/{repository}"
    objects: list[dict[str, Any]] = []
    comments: list[tuple[str, ...]] = []

    objects.append(
        _object(
            IMAGE_API,
            "ImageRepository",
            base,
            namespace,
            {
                "image": image,
                "interval": interval,
                "provider": "azure",
                "exclusionList": [
                    SIGNATURE_EXCLUSION,
                    *(f"^{_re2_literal(tag)}$" for tag in source_tags),
                ],
            },
        )
    )
    comments.append(
        (
            f"Generated by acr-retag flux-manifests for {image} (template {template.text}).",
            "Needs Flux 2.7 or later (image.toolkit.fluxcd.io/v1) with the image automation",
            "controllers; on Flux 2.0-2.6 use image.toolkit.fluxcd.io/v1beta2, same fields.",
            "provider: azure: the image-reflector-controller needs AcrPull (docs/flux.md).",
        )
    )

    seen: dict[str, str] = {}
    for tag in source_tags:
        policy = policy_name(base, tag)
        if policy in seen:
            raise ValueError(
                f"source tags {seen[policy]!r} and {tag!r} give the same ImagePolicy name "
                f"{policy!r}; pass --source-tag for one of them at a time"
            )
        seen[policy] = tag
        objects.append(
            _object(
                IMAGE_API,
                "ImagePolicy",
                policy,
                namespace,
                {
                    "imageRepositoryRef": {"name": base},
                    "filterTags": {"pattern": template.flux_pattern(tag), "extract": "$ts"},
                    "policy": {"alphabetical": {"order": "asc"}},
                },
            )
        )
        comments.append(
            (
                f"Selects the newest generated tag of {repository}:{tag}. Setter marker:",
                f'{image}:<tag> # {{"$imagepolicy": "{namespace}:{policy}"}}',
            )
        )

    if receiver:
        hook = Receiver(name=base, secret_name=kubernetes_name(f"{base}-receiver-token"))
        objects.append(
            _object(
                NOTIFICATION_API,
                "Receiver",
                hook.name,
                namespace,
                {
                    "type": "generic-hmac",
                    "secretRef": {"name": hook.secret_name},
                    "resources": [
                        {"apiVersion": IMAGE_API, "kind": "ImageRepository", "name": base}
                    ],
                },
            )
        )
        comments.append(receiver_comment(hook, namespace))
    return FluxObjects(tuple(objects), tuple(comments))


def receiver_comment(hook: Receiver, namespace: str) -> tuple[str, ...]:
    """How to create the Receiver's Secret and find its URL; the token itself is never printed
    (it is read from the environment variable when the command is run)."""
    return (
        "FLUX_RECEIVER_URL is set: acr-retag POSTs each new tag here (generic-hmac, X-Signature).",
        "Create the Secret first, key `token`, with the value of FLUX_RECEIVER_TOKEN (not",
        "printed here; the pipe keeps it out of the process list and shell history):",
        '  printf %s "$FLUX_RECEIVER_TOKEN" | kubectl -n '
        f"{namespace} create secret generic {hook.secret_name} --from-file=token=/dev/stdin",
        "FLUX_RECEIVER_URL is https://<your webhook-receiver ingress> + the Receiver's path:",
        f"  kubectl -n {namespace} get receiver {hook.name} -o jsonpath='{{.status.webhookPath}}'",
    )


def _object(
    api_version: str, kind: str, name: str, namespace: str, spec: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": dict(spec),
    }


# -- YAML ---------------------------------------------------------------------------------------


def yaml_documents(
    documents: Sequence[Mapping[str, Any]], comments: Sequence[Sequence[str]] = ()
) -> str:
    """Multi-document YAML (`---` before each), each preceded by its comment lines."""
    out: list[str] = []
    for index, document in enumerate(documents):
        out.append("---")
        for line in comments[index] if index < len(comments) else ():
            out.append(f"# {line}".rstrip())
        out.extend(_mapping(document, 0))
    return "\n".join(out) + "\n"


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a YAML double-quoted scalar
    raise TypeError(f"cannot write {type(value).__name__} as a YAML scalar")


def _key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"mapping keys must be strings, not {type(key).__name__}")
    return key if _PLAIN_KEY_RE.fullmatch(key) else json.dumps(key)


def _mapping(value: Mapping[str, Any], indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for key, item in value.items():
        if isinstance(item, Mapping) and item:
            lines.append(f"{pad}{_key(key)}:")
            lines.extend(_mapping(item, indent + 2))
        elif isinstance(item, list) and item:
            lines.append(f"{pad}{_key(key)}:")
            lines.extend(_sequence(item, indent + 2))
        else:
            lines.append(f"{pad}{_key(key)}: {_inline(item)}")
    return lines


def _sequence(value: Sequence[Any], indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for item in value:
        if isinstance(item, Mapping) and item:
            nested = _mapping(item, indent + 2)
            lines.append(f"{pad}- {nested[0].lstrip()}")
            lines.extend(nested[1:])
        elif isinstance(item, list) and item:
            raise TypeError("nested sequences are not written")
        else:
            lines.append(f"{pad}- {_inline(item)}")
    return lines


def _inline(value: object) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)
