"""abi-check's signature line: is this version signed, and by whom (docs/signing.md).

Reported, not a check: the signature says who vouches for the artifact, not whether its ABI
is right. Without --trust, a valid signature is reported with its key id ("unknown key" needs
a list of keys to be unknown to).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from paddlehot_cli.core.manifest import MANIFEST_NAME, sha256_file
from paddlehot_cli.core.signatures import Signature, Subject, Trust, read_signatures, verdict


def signature_report(package_dir: Path, name: str, version: str,
                     trust: list[Path] = ()) -> dict[str, str]:
    """{'paddlehot.json': 'valid (key ...)' | 'unsigned ...' | 'unknown key ...' |
    'invalid ...', 'plugin.so': ... when the version has one}."""
    keys = Trust.from_files(list(trust)).keys if trust else None
    sigs = read_signatures(package_dir)
    data = (package_dir / MANIFEST_NAME).read_bytes()
    out = {MANIFEST_NAME: str(verdict(sigs, Subject("manifest", name, version,
                                                    hashlib.sha256(data).hexdigest()), keys))}
    plugin = package_dir / "plugin.so"
    if plugin.is_file():
        digest = sha256_file(plugin)
        arch = next((s.subject.arch for _, s in sigs if isinstance(s, Signature)
                     and s.subject.sha256 == digest), "")
        out["plugin.so"] = str(verdict(sigs, Subject("plugin", name, version, digest, arch), keys))
    return out
