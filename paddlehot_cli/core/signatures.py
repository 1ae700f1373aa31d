"""Detached, append-only Ed25519 signatures of published versions (docs/signing.md).

One signature covers a version's paddlehot.json (which records every model file's sha256);
one covers each plugin build. They live in VERSION/signatures/ as small JSON files:

    signatures/manifest.KEYID.sig                 paddlehot.json, signed by key KEYID
    signatures/plugin-ARCH-SHA12.KEYID.sig        one plugin build (ARCH: x86_64, aarch64)

A signature is only ever added, never rewritten: a new architecture's plugin or a second key
(rotation) adds a file and leaves the others as they are. Each file names what it signs
(kind, arch, model name, version, the sha256 of the signed bytes) and carries the public key,
so its integrity can be checked without trusting that key (abi-check says "unknown key").

The `cryptography` package is imported only when a key is read, a signature made or checked:
`paddlehot --help` and a serve without --trust never load it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from paddlehot_cli.core.manifest import MANIFEST_NAME, sha256_file
from paddlehot_cli.core.plugin_image import read_digest
from paddlehot_cli.core.signing_keys import key_id, load_private_key, load_public_key, raw_public
from paddlehot_cli.errors import UserError

SIG_DIR = "signatures"
FORMAT = 1
MAX_SIG_BYTES = 64 * 1024
_DOMAIN = b"paddlehot-signature-v1\n"  # never valid as anything else signed with the same key
_SIG_NAME_RE = re.compile(r"^(manifest|plugin-[a-z0-9_]{1,32}-[0-9a-f]{12})\.([0-9a-f]{16})\.sig$")
_ARCH_RE = re.compile(r"^[a-z0-9_]{1,32}$")


class SignatureError(UserError):
    """A key or signature that cannot be used; `reason` is a short metrics label."""

    reason = "bad_signature"


def is_signature_name(name: str) -> bool:
    return bool(_SIG_NAME_RE.match(name))


@dataclass(frozen=True)
class Subject:
    """What one signature vouches for."""

    kind: str  # manifest | plugin
    name: str
    version: str
    sha256: str  # hex of the signed file's bytes
    arch: str = ""  # plugins only

    @property
    def stem(self) -> str:
        return "manifest" if self.kind == "manifest" else f"plugin-{self.arch}-{self.sha256[:12]}"

    def message(self) -> bytes:
        doc = {"kind": self.kind, "name": self.name, "version": self.version,
               "sha256": self.sha256, "arch": self.arch}
        return _DOMAIN + json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    def to_json(self) -> dict:
        return {"kind": self.kind, "name": self.name, "version": self.version,
                "sha256": self.sha256, "arch": self.arch}


# -- signing ---------------------------------------------------------------------------------


def sign(private, subject: Subject) -> bytes:
    """The signature file's bytes (deterministic: Ed25519 signs the same message identically)."""
    raw = raw_public(private.public_key())
    doc = {"paddlehot_signature": FORMAT, "subject": subject.to_json(), "key_id": key_id(raw),
           "key": base64.b64encode(raw).decode(),
           "signature": base64.b64encode(private.sign(subject.message())).decode()}
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()


def file_name(subject: Subject, kid: str) -> str:
    return f"{subject.stem}.{kid}.sig"


def add_signature(vdir: Path, data: bytes) -> Path | None:
    """Add one signature file to VERSION/signatures/ (atomically; never replaces one): the path,
    or None when the very same signature is already there."""
    parsed = parse(data, "new signature")
    sig_dir = Path(vdir) / SIG_DIR
    sig_dir.mkdir(exist_ok=True)
    dest = sig_dir / file_name(parsed.subject, parsed.key_id)
    if dest.exists():
        if dest.read_bytes() == data:
            return None
        raise UserError(f"{dest} already exists with other content; signatures are only added",
                        hint="remove it by hand if it is known to be wrong")
    fd, tmp = tempfile.mkstemp(prefix=".sig-", dir=sig_dir)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.link(tmp, dest)  # fails if another signer got there first: never overwritten
    except FileExistsError:
        raise UserError(f"{dest} appeared while signing; run sign again") from None
    finally:
        os.unlink(tmp)
    return dest


def manifest_subject(vdir: Path) -> Subject:
    from paddlehot_cli.core.manifest import loads_manifest

    data = (Path(vdir) / MANIFEST_NAME).read_bytes()
    m = loads_manifest(data, str(Path(vdir) / MANIFEST_NAME))
    return Subject("manifest", m.name, m.version, hashlib.sha256(data).hexdigest())


def plugin_subject(path: Path, name: str, version: str, arch: str) -> Subject:
    if not _ARCH_RE.match(arch):
        raise UserError(f"unsupported plugin architecture '{arch}'")
    return Subject("plugin", name, version, sha256_file(path), arch)


# -- reading and verifying -------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    subject: Subject
    key_id: str
    key: bytes  # raw public key
    signature: bytes

    def valid(self) -> bool:
        """Whether the signature is the embedded key's over the subject (not: whether the key
        is trusted)."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            Ed25519PublicKey.from_public_bytes(self.key).verify(self.signature,
                                                                self.subject.message())
        except (InvalidSignature, ValueError):
            return False
        return True


def parse(data: bytes, where: str) -> Signature:
    """Decode a signature file; SignatureError when it is not one."""
    try:
        doc = json.loads(data)
        sub = doc["subject"]
        subject = Subject(str(sub["kind"]), str(sub["name"]), str(sub["version"]),
                          str(sub["sha256"]), str(sub.get("arch", "")))
        key = base64.b64decode(doc["key"], validate=True)
        sig = base64.b64decode(doc["signature"], validate=True)
        kid = str(doc["key_id"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise SignatureError(f"{where} is not a paddlehot signature file") from None
    if doc.get("paddlehot_signature") != FORMAT or subject.kind not in ("manifest", "plugin") \
            or len(key) != 32 or len(sig) != 64 or kid != key_id(key) \
            or not re.fullmatch(r"[0-9a-f]{64}", subject.sha256):
        raise SignatureError(f"{where} is not a paddlehot signature file (format {FORMAT})")
    return Signature(subject, kid, key, sig)


def read_signatures(vdir: Path) -> list[tuple[str, Signature | str]]:
    """(file name, Signature or why it could not be read) for each file in VERSION/signatures/."""
    sig_dir = Path(vdir) / SIG_DIR
    try:
        names = sorted(os.listdir(sig_dir))
    except FileNotFoundError:
        return []
    out: list[tuple[str, Signature | str]] = []
    for name in names:
        if name.startswith("."):
            continue
        path = sig_dir / name
        if not is_signature_name(name) or path.is_symlink() or not path.is_file():
            out.append((name, "not a signature file name"))
            continue
        with open(path, "rb") as fh:
            data = fh.read(MAX_SIG_BYTES + 1)
        try:
            out.append((name, parse(data, f"{SIG_DIR}/{name}")))
        except SignatureError as exc:
            out.append((name, exc.message))
    return out


@dataclass(frozen=True)
class Verdict:
    """One artifact's signature state: valid | unsigned | unknown key | invalid."""

    state: str
    detail: str = ""
    key_id: str = ""

    def __str__(self) -> str:
        return self.state + (f" ({self.detail})" if self.detail else "")


def verdict(sigs: list[tuple[str, Signature | str]], subject: Subject,
            trusted: dict[str, bytes] | None) -> Verdict:
    """The best verdict for `subject` among the version's signatures. trusted None: any key
    whose signature is valid counts (abi-check without --trust says which key)."""
    mine = [(n, s) for n, s in sigs if isinstance(s, Signature) and s.subject.kind == subject.kind
            and (subject.kind == "manifest" or s.subject.sha256 == subject.sha256)]
    if not mine:
        return Verdict("unsigned", f"no signature of its {subject.kind}")
    bad, unknown = "", ""
    for name, sig in mine:
        if sig.subject != subject:
            bad = bad or f"{name} signs {sig.subject.name} {sig.subject.version} " \
                         f"sha256 {sig.subject.sha256[:12]}, not this {subject.kind} " \
                         f"({subject.name} {subject.version} sha256 {subject.sha256[:12]})"
        elif not sig.valid():
            bad = bad or f"{name}: the signature does not verify"
        elif trusted is not None and trusted.get(sig.key_id) != sig.key:
            unknown = unknown or sig.key_id
        else:
            return Verdict("valid", f"key {sig.key_id}", sig.key_id)
    if bad:
        return Verdict("invalid", bad)
    return Verdict("unknown key", f"signed by key {unknown}, not a trusted key")


class Trust:
    """The public keys a box trusts (`serve --trust`, several for rotation)."""

    def __init__(self, keys: dict[str, bytes]):
        if not keys:
            raise UserError("--trust needs at least one public key")
        self.keys = dict(keys)

    @classmethod
    def from_files(cls, paths: list[Path]) -> Trust:
        raws = [load_public_key(Path(p)) for p in paths]
        return cls({key_id(r): r for r in raws})

    def check_version(self, vdir: Path, name: str, version: str) -> str | None:
        """Why this version may not serve, or None: paddlehot.json must carry a valid signature
        by a trusted key, and so must plugin.so when the version has one."""
        vdir = Path(vdir)
        sigs = read_signatures(vdir)
        data = (vdir / MANIFEST_NAME).read_bytes()
        subject = Subject("manifest", name, version, hashlib.sha256(data).hexdigest())
        v = verdict(sigs, subject, self.keys)
        if v.state != "valid":
            return f"{MANIFEST_NAME} {v}: refused by --trust"
        plugin = vdir / "plugin.so"
        if plugin.is_file():
            # the digest the plugin loader holds the bytes to: it dlopens only a sealed copy
            # that hashes to plugin.so.sha256 (core/plugin_image.py), so signing that digest
            # covers what runs, without hashing a (model-embedding, 40 MB) plugin twice
            digest = read_digest(plugin) or sha256_file(plugin)
            # the arch is part of the signed subject: take it from the signature that names
            # these bytes (a plugin's bytes fix its arch)
            arch = next((s.subject.arch for _, s in sigs if isinstance(s, Signature)
                         and s.subject.kind == "plugin" and s.subject.sha256 == digest), "")
            v = verdict(sigs, Subject("plugin", name, version, digest, arch), self.keys)
            if v.state != "valid":
                return f"plugin.so {v}: refused by --trust"
        return None


# -- signing a whole version -----------------------------------------------------------------


def sign_version(vdir: Path, key_path: Path, plugins: list[Path] = ()) -> list[Path]:
    """Sign VERSION/paddlehot.json, VERSION/plugin.so (when there) and each plugin of this
    version built elsewhere (e.g. build-plugin --target aarch64). Returns the files added;
    signatures already there are kept as they are."""
    from paddlehot_cli.core.manifest import read_verified
    from paddlehot_cli.core.plugin_identity import plugin_arch

    vdir = Path(vdir)
    manifest = read_verified(vdir)  # never vouch for files that do not match their checksums
    private = load_private_key(key_path)
    subjects = [manifest_subject(vdir)]
    local = vdir / "plugin.so"
    for path in ([local] if local.is_file() else []) + [Path(p) for p in plugins]:
        arch = plugin_arch(path, manifest.name, manifest.version, manifest.precision)
        subjects.append(plugin_subject(path, manifest.name, manifest.version, arch))
    added = [add_signature(vdir, sign(private, s)) for s in subjects]
    return [p for p in added if p is not None]
