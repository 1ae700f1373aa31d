"""Atomic publishing: build a version in a hidden temp dir beside its final place, then rename.

A reader (the repository watcher, a loader) sees a whole version or none. Hidden names (starting
with '.') are never treated as versions.

A published version is readable by other users as the umask allows (0755 / 0644 under the usual
022): mkdtemp makes the staging dir 0700, and a root-published repository served by a service
user (templates/deploy/paddlehot.service runs User=paddlehot) must be readable.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ContextManager, Iterator

from paddlehot_cli.errors import UserError


def current_umask() -> int:
    """The process umask, read without changing it when /proc says it (os.umask can only be read
    by setting it, which races with other threads creating files)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def shared_mode(path: Path, base: int = 0o777) -> None:
    """Widen a 0700/0600 temp dir or file to what a plain mkdir/open would make (base & ~umask)."""
    os.chmod(path, base & ~current_umask())


@contextmanager
def staging_dir(final: Path) -> Iterator[Path]:
    """A hidden temp dir on the same filesystem as `final`; removed if the block fails."""
    parent = final.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {parent}: {exc.strerror}") from None
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=parent))
    try:
        shared_mode(tmp)
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(staged: Path, final: Path, force: bool = False) -> Path:
    """Rename a finished staging dir into place. Refuses to replace `final` unless `force`."""
    _fsync_tree(staged)
    if final.exists() and not force:
        shutil.rmtree(staged, ignore_errors=True)
        raise UserError(
            f"{final} already exists; a published version is never modified",
            hint="bump --version, or pass --force to replace it",
        )
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(final, old)
    try:
        os.rename(staged, final)
    except OSError as exc:
        shutil.rmtree(staged, ignore_errors=True)
        if old is not None:
            os.rename(old, final)
        raise UserError(f"cannot publish {final}: {exc.strerror}") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


def publish_copy(source_dir: Path, repo: Path, version: str,
                 finish: Callable[[Path], object] | None = None) -> Path:
    """Publish an existing package under a new version of the same model (same files, manifest
    version rewritten): how a bench or a test makes many versions cheaply. Atomic like export.
    `finish(staged)` runs before the rename (bench builds the version's plugin.so there)."""
    import json

    from paddlehot_cli.core.manifest import MANIFEST_NAME, dumps_manifest, read_verified

    manifest = read_verified(source_dir)
    final = repo / manifest.name / version
    with staging_dir(final) as staged:
        for fname in manifest.files:
            shutil.copy2(source_dir / fname, staged / fname)
        data = json.loads((source_dir / MANIFEST_NAME).read_text())
        data["version"] = version
        (staged / MANIFEST_NAME).write_text(dumps_manifest(data))
        if finish is not None:
            finish(staged)
        return commit(staged, final)


def sign_staged(staged: Path, key: Path) -> None:
    """Sign a version before its rename into place (export --sign): a box that serves only
    signed versions never sees it unsigned."""
    from paddlehot_cli.core.signatures import sign_version

    sign_version(staged, key)


def sign_and_commit(staged: Path, final: Path, sign_key: Path | None, force: bool,
                    step: Callable[[str], ContextManager[Any]]) -> Path:
    """The last steps of export and variant: sign the staged version (when a key is given),
    then rename it into place; `step` names each for the progress display."""
    if sign_key is not None:
        with step(f"Signing with {sign_key}"):
            sign_staged(staged, sign_key)
    with step(f"Publishing {final}"):
        return commit(staged, final, force=force)
