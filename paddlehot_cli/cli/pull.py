"""`paddlehot pull oci://HOST/NS/NAME[:TAG] --repo REPO`: one version from a registry into REPO."""

from __future__ import annotations

from pathlib import Path

import typer

from paddlehot_cli.cli.errors import user_errors
from paddlehot_cli.cli.render import human_bytes, out, transfer


@user_errors
def pull(
    source: str = typer.Argument(
        ..., metavar="[MODEL=]oci://HOST[:PORT]/NAMESPACE/NAME[:TAG|@RANGE]",
        help="A version tag (1.2.0), a label (stable), a SemVer range (@^1.2) or nothing (the "
             "newest version). The package must be named NAME (or MODEL when given).",
        show_default=False),
    repo: Path = typer.Option(..., "--repo", help="Model repository to pull into (REPO/NAME/VERSION).",
                              show_default=False),
    insecure: bool = typer.Option(False, "--insecure",
                                  help="Plain HTTP instead of TLS (a test registry on 127.0.0.1)."),
    trust: list[Path] | None = typer.Option(
        None, "--trust", metavar="KEY.pub",
        help="Install only a version signed by one of these public keys (repeatable)."),
    registry_ca: Path | None = typer.Option(
        None, "--registry-ca", metavar="CA.pem",
        help="Trust the registry's certificate if this CA bundle (PEM) signed it."),
) -> None:
    """Pull one version into REPO exactly as `serve --follow` does: a hidden staging dir, every
    blob checked against its digest, then the package checksums, then one rename.

    A serve watching REPO picks the version up like any publish. Files another local version
    already has (same sha256) are copied instead of downloaded; on an image index the plugin of
    this machine's architecture comes along as VERSION/plugin.so.

    Examples:

      paddlehot pull oci://registry.local:5000/models/mlp:1.2.0 --repo /var/lib/paddlehot/models

      paddlehot pull oci://registry.local:5000/models/mlp:stable --repo models/
    """
    from paddlehot_cli.core.signatures import Trust
    from paddlehot_cli.fleet.client import trust_registry_ca
    from paddlehot_cli.fleet.pull import pull_version
    from paddlehot_cli.fleet.reference import parse_reference

    trust_registry_ca(registry_ca)
    ref = parse_reference(source)
    keys = Trust.from_files(list(trust)) if trust else None
    with transfer(f"pulling {ref}") as (on_total, progress):
        r = pull_version(ref, repo, insecure=insecure, trust=keys, on_total=on_total,
                         progress=progress)
    _say(r)
    out.print(f"  digest {r.digest}", soft_wrap=True)
    for v in r.variants:  # its precision variants (VERSION-PRECISION tags)
        _say(v, "  variant ")


def _say(r, lead: str = "") -> None:
    note = f" ({r.note})" if r.note else ""
    if r.added:
        out.print(f"{lead}{r.path} was already here: added {', '.join(r.added)}{note}",
                  soft_wrap=True)
    elif r.already_present:
        out.print(f"{lead}{r.path} is already here and identical to {r.reference}{note}",
                  soft_wrap=True)
    else:
        plugin = f", {r.plugin_arch} plugin" if r.plugin_arch else ""
        out.print(f"{lead}pulled {r.reference} -> {r.path}{plugin}{note}: "
                  f"{human_bytes(r.downloaded_bytes)} downloaded, {human_bytes(r.reused_bytes)} "
                  f"reused from local versions, {r.seconds:.2f} s", soft_wrap=True)
