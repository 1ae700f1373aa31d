"""`paddlehot push REPO:NAME@VERSION oci://HOST/NS/NAME`: ship one version to an OCI registry."""

from __future__ import annotations

from pathlib import Path

import typer

from paddlehot_cli.cli.errors import user_errors
from paddlehot_cli.cli.render import human_bytes, out, transfer


@user_errors
def push(
    version: str = typer.Argument(..., metavar="REPO:NAME@VERSION",
                                  help="The published version to ship (REPO:NAME: the newest), "
                                  "with its precision variants; REPO:NAME@1.2.0-int8: that "
                                  "variant alone.", show_default=False),
    target: str = typer.Argument(..., metavar="oci://HOST[:PORT]/NAMESPACE/NAME",
                                 help="Registry repository; the tag is the version.",
                                 show_default=False),
    plugin: list[Path] | None = typer.Option(
        None, "--plugin", metavar="PLUGIN.so",
        help="A plugin of this version built for another architecture (build-plugin --target); "
             "repeatable. VERSION/plugin.so, if present, is included anyway."),
    tag: list[str] | None = typer.Option(
        None, "--tag", metavar="LABEL",
        help="Also point this label (e.g. stable) at the version: boxes following the label "
             "roll out (or back) to it. Repeatable."),
    insecure: bool = typer.Option(False, "--insecure",
                                  help="Plain HTTP instead of TLS (a test registry on 127.0.0.1)."),
    registry_ca: Path | None = typer.Option(
        None, "--registry-ca", metavar="CA.pem",
        help="Trust the registry's certificate if this CA bundle (PEM) signed it."),
    force: bool = typer.Option(False, "--force",
                               help="Replace a version tag that holds different content."),
    sign: Path | None = typer.Option(
        None, "--sign", metavar="KEYFILE",
        help="Sign the version and its plugins first (as `paddlehot sign`); signatures already "
             "in VERSION/signatures/ are pushed anyway."),
) -> None:
    """Push one model version to an OCI registry as one artifact tagged with its SemVer version.

    The artifact's config is the package's paddlehot.json; each file is a layer with its own
    media type. Plugins for several architectures travel under the one tag as an image index,
    so an x86_64 box and an aarch64 box pulling 1.2.0 each get their own plugin. Pushing a
    version that is already there adds what is new (another architecture's plugin, signatures)
    and refuses content that differs unless --force. Blobs the registry already has are
    skipped. The version's precision variants (VERSION/variants/*) go with it, each as its own
    artifact under its key (1.2.0-int8), immutable like the version. Credentials: docker
    config (`docker login`) or PADDLEHOT_REGISTRY_USERNAME / PADDLEHOT_REGISTRY_PASSWORD.

    Examples:

      paddlehot push models:mlp@1.2.0 oci://registry.local:5000/models/mlp

      paddlehot push models:mlp@1.2.0 oci://registry.local:5000/models/mlp \\
          --plugin build/mlp-1.2.0-aarch64.so --tag stable
    """
    from paddlehot_cli.fleet.client import trust_registry_ca
    from paddlehot_cli.fleet.push import push_version
    from paddlehot_cli.fleet.reference import parse_reference

    trust_registry_ca(registry_ca)
    ref = parse_reference(target)
    with transfer(f"pushing {version}") as (on_total, progress):
        result = push_version(version, ref, plugins=list(plugin or []), tags=list(tag or []),
                              insecure=insecure, force=force, sign_key=sign, on_total=on_total,
                              progress=progress)
    what = "already in the registry" if result.already_there else (
        f"added {', '.join(result.added)} to the version in the registry; " if result.added else ""
    ) + (
        f"{human_bytes(result.uploaded_bytes)} uploaded, {human_bytes(result.skipped_bytes)} "
        "already there")
    plugins = f" (plugins: {', '.join(result.platforms)})" if result.platforms else ""
    out.print(f"pushed {result.reference}{plugins}: {what}, {result.seconds:.2f} s", soft_wrap=True)
    out.print(f"  digest {result.digest}  tags {', '.join(result.tags)}", soft_wrap=True)
    if result.labels_followed:
        out.print(f"  labels {', '.join(result.labels_followed)} moved along: they named this "
                  "version before the push added to it", soft_wrap=True)
    for v in result.variants:  # precision variants, each under its own immutable tag
        state = ("already in the registry" if v.already_there else
                 f"added {', '.join(v.added)}" if v.added else
                 f"{human_bytes(v.uploaded_bytes)} uploaded")
        plugins = f" (plugins: {', '.join(v.platforms)})" if v.platforms else ""
        out.print(f"  variant {v.reference}{plugins}: {state}", soft_wrap=True)
    if result.name != ref.name:  # boxes install NAME, the last path segment, and refuse others
        out.print(f"  note: boxes following {ref.base} install it only when told: "
                  f"--follow {result.name}={ref.base}", soft_wrap=True)
