"""`oci://HOST[:PORT]/NAMESPACE/NAME[:TAG | @RANGE | @sha256:DIGEST]`: where a model lives in a
registry, and which of its versions a command means."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from paddlehot_cli.core.variants import is_key
from paddlehot_cli.core.versions import check_model_name, is_semver
from paddlehot_cli.errors import UserError
from paddlehot_cli.fleet.errors import BadReference

SCHEME = "oci://"
_HOST_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)(?::(\d{1,5}))?$")
_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_LABEL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")  # a movable tag: starts with a letter
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
FORMAT_HINT = "write oci://HOST[:PORT]/NAMESPACE/NAME, e.g. oci://registry.local:5000/models/mlp"


@dataclass(frozen=True)
class Reference:
    registry: str  # host[:port]
    repository: str  # namespace/name (lowercase path components)
    tag: str | None = None  # a SemVer version or a label such as `stable`
    range: str | None = None  # a SemVer range (follow only)
    digest: str | None = None
    model: str | None = None  # MODEL=oci://...: install as this model, not as NAME

    @property
    def name(self) -> str:
        return self.repository.rsplit("/", 1)[-1]

    @property
    def install_as(self) -> str:
        """The model a box installs from this reference: NAME (the last path segment) unless
        the user said MODEL=oci://...; a package of any other name is refused."""
        return self.model or self.name

    @property
    def base(self) -> str:
        return f"{SCHEME}{self.registry}/{self.repository}"

    def __str__(self) -> str:
        if self.model:
            return f"{self.model}={replace(self, model=None)}"
        if self.digest:
            return f"{self.base}@{self.digest}"
        if self.range:
            return f"{self.base}@{self.range}"
        return f"{self.base}:{self.tag}" if self.tag else self.base


def is_label(tag: str) -> bool:
    return bool(_LABEL_RE.match(tag)) and not is_semver(tag)


def check_tag(tag: str, what: str = "tag") -> str:
    """A tag we read or write is a SemVer version or a variant key (1.4.0-int8), both
    immutable, or a label (movable)."""
    if not _TAG_RE.match(tag) or not (is_key(tag) or is_label(tag)):
        raise BadReference(
            f"{what} '{tag}' is neither a SemVer version nor a label (nor a variant key)",
            hint="versions are MAJOR.MINOR.PATCH (1.4.0), a precision variant 1.4.0-int8; "
            "labels start with a letter (stable)",
        )
    return tag


def parse_reference(text: str) -> Reference:
    """Parse a reference; tags are checked here, ranges by the caller that accepts them.
    `MODEL=oci://...` names the model to install (default: NAME)."""
    model = None
    if "=" in text and not text.startswith(SCHEME):
        model, _, text = text.partition("=")
        try:
            check_model_name(model)
        except UserError as exc:
            raise BadReference(f"'{model}=' {exc.message}") from None
    if not text.startswith(SCHEME):
        raise BadReference(f"'{text}' is not an OCI reference", hint=FORMAT_HINT)
    rest = text[len(SCHEME):]
    host, _, path = rest.partition("/")
    match = _HOST_RE.match(host)
    if not match or (match[2] and not 0 < int(match[2]) < 65536):
        raise BadReference(f"invalid registry host '{host}' in '{text}'", hint=FORMAT_HINT)
    tag = rng = digest = None
    if "@" in path:
        path, _, after = path.partition("@")
        if after.startswith("sha256:"):
            if not _DIGEST_RE.match(after):
                raise BadReference(f"invalid digest '{after}' in '{text}'")
            digest = after
        elif after:
            rng = after
        else:
            raise BadReference(f"empty version range after '@' in '{text}'")
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, _, tag = path.rpartition(":")
        check_tag(tag)
    components = path.split("/") if path else []
    if len(components) < 2 or not all(_COMPONENT_RE.match(c) for c in components):
        raise BadReference(
            f"invalid repository path '{path}' in '{text}' (lowercase letters, digits, '.', '_', "
            "'-'; at least NAMESPACE/NAME)", hint=FORMAT_HINT)
    if sum(x is not None for x in (tag, rng, digest)) > 1:
        raise BadReference(f"'{text}' names both a tag and a range or digest")
    return Reference(host, path, tag, rng, digest, model)
