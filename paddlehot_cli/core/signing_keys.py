"""Ed25519 key pairs for signed versions (core/signatures.py): make one, read one, name one.

A private key is PEM (PKCS#8, unencrypted: it is kept offline or in a secret store), mode 0600,
never written over an existing file; its public key is PEM beside it as KEYFILE.pub. A key is
named by its id, the first 16 hex digits of the sha256 of the raw 32-byte public key.
`cryptography` is imported inside the functions, only when a key is used.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from paddlehot_cli.errors import UserError

MAX_KEY_BYTES = 64 * 1024


def key_id(raw_public: bytes) -> str:
    return hashlib.sha256(raw_public).hexdigest()[:16]


def generate_key(path: Path) -> str:
    """Write a new private key to PATH (mode 0600, never over an existing file) and its public
    key to PATH.pub; return the key id."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = Path(path)
    pub_path = path.with_name(path.name + ".pub")
    for p in (path, pub_path):
        if p.exists():
            raise UserError(f"{p} already exists; a key is never overwritten",
                            hint="choose another file name")
    try:  # `sign --new-key keys/release.key` on a fresh checkout: keys/ is made (0700)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"{path.parent} is not a directory") from None
    except OSError as exc:
        raise UserError(f"cannot create {path.parent}: {exc.strerror}") from None
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = private.public_key()
    _write_new(path, pem, 0o600)
    _write_new(pub_path, public.public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo), 0o644)
    return key_id(raw_public(public))


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as exc:
        raise UserError(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)  # whatever the umask says


def raw_public(public) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _read_key_file(path: Path) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read key {path}: {exc.strerror}") from None
    if len(data) > MAX_KEY_BYTES:
        raise UserError(f"{path} is not a key file (larger than {MAX_KEY_BYTES} bytes)")
    return data


def load_private_key(path: Path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(_read_key_file(path), password=None)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{path} is not an unencrypted PEM private key ({exc})",
                        hint="make one with `paddlehot sign --new-key FILE`") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError(f"{path} is not an Ed25519 key")
    return key


def load_public_key(path: Path) -> bytes:
    """Raw 32-byte public key from a PEM public key (or from a private key file)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = _read_key_file(path)
    try:
        if b"PRIVATE KEY" in data:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{path} is not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UserError(f"{path} is not an Ed25519 public key")
    return raw_public(key)
