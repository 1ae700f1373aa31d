"""`paddlehot sign REPO:NAME@VERSION --key KEY`: detached signatures for one version."""

from __future__ import annotations

from pathlib import Path

import typer

from paddlehot_cli.cli.errors import user_errors
from paddlehot_cli.cli.render import out


@user_errors
def sign(
    version: str | None = typer.Argument(
        None, metavar="REPO:NAME[@VERSION]", show_default=False,
        help="The published version to sign (REPO:NAME: the newest)."),
    key: Path | None = typer.Option(None, "--key", metavar="KEYFILE",
                                    help="Ed25519 private key (PEM) to sign with."),
    plugin: list[Path] | None = typer.Option(
        None, "--plugin", metavar="PLUGIN.so",
        help="Also sign this version's plugin built for another architecture (build-plugin "
             "--target); repeatable. VERSION/plugin.so is signed anyway."),
    new_key: Path | None = typer.Option(
        None, "--new-key", metavar="KEYFILE",
        help="Make a key pair instead: KEYFILE (private, mode 0600) and KEYFILE.pub (give that "
             "to `serve --trust`)."),
) -> None:
    """Sign a published version: its paddlehot.json (which records every model file's sha256)
    and each plugin, with detached Ed25519 signatures in VERSION/signatures/.

    Signatures are only ever added: signing again with another key (rotation) or signing a
    plugin built later adds files and changes nothing already there. `serve --trust KEY.pub`
    serves only versions signed by a trusted key; `push` ships the signatures with the version.

    Examples:

      paddlehot sign --new-key keys/release.key

      paddlehot sign models:mlp@1.2.0 --key keys/release.key --plugin build/mlp-aarch64.so
    """
    from paddlehot_cli.core import signatures
    from paddlehot_cli.core.repository import resolve_version
    from paddlehot_cli.core.signing_keys import generate_key
    from paddlehot_cli.errors import UserError

    if new_key is not None:
        if version is not None or key is not None:
            raise UserError("--new-key makes a key pair; sign a version in another call")
        kid = generate_key(new_key)
        out.print(f"key {kid}: private {new_key} (0600, keep it offline), public "
                  f"{new_key}.pub (for serve --trust)", soft_wrap=True)
        return
    if version is None or key is None:
        raise UserError("give REPO:NAME@VERSION and --key KEYFILE (or --new-key KEYFILE)")
    vdir = resolve_version(version)
    added = signatures.sign_version(vdir, key, list(plugin or []))
    for path in added:
        out.print(f"signed: {path}", soft_wrap=True)
    if not added:
        out.print(f"{vdir} already carries these signatures", soft_wrap=True)
