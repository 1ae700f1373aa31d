"""RepositorySource: watch REPO/NAME/VERSION/ and report, per model, the versions that are complete.

A version counts only when its directory name is SemVer, it is not hidden (hidden dirs are
staging dirs of an atomic publish), its paddlehot.json is present, names this model and version,
and every checksum matches. Verification results are cached by a cheap stat signature of the
directory, so a version is hashed once, and again only when its files change (a copy in
progress is re-checked until it completes). Changes are picked up with watchfiles (debounced);
a poll every `poll_interval` seconds is the fallback and the safety net.

A symlink (model dir, version dir or file) that leads out of the repository is refused: the
version is reported invalid. Rejections are reported with paths relative to the repository;
`on_invalid(model, version, None)` says a rejected version is gone or fixed.

A scan that cannot read the repository because of this machine (out of fds, memory or disk, an
I/O error, permission denied on a model directory) never reports versions as gone: the models it
could not read keep their last reported state, one ERROR is logged, and
`on_scan_error(message)` says so until a whole scan succeeds again (`on_scan_error(None)`).
Only a missing directory or file means "gone". Such failures are never cached as a verdict on
a version: the next scan tries again.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from paddlehot_cli.core.manifest import MANIFEST_NAME, read_manifest, verify_files
from paddlehot_cli.core.precision_hardware import cpu_refusal
from paddlehot_cli.core.small_files import read_control_file
from paddlehot_cli.core.variants import variant_dir, variant_key, variant_precisions
from paddlehot_cli.core.versions import check_model_name, is_semver
from paddlehot_cli.errors import UserError

log = logging.getLogger("paddlehot.source")
LABELS_FILE = "labels.json"

OnVersions = Callable[[str, dict[str, Path], object], None]  # model, {version: dir}, labels json
OnInvalid = Callable[[str, str, "str | None"], None]  # model, version, reason (None: cleared)
OnScanError = Callable[["str | None"], None]  # why the last scan failed (None: it works again)
CheckVersion = Callable[[Path, str, str], "str | None"]  # vdir, model, version -> why refused
# files beside the package whose change re-checks a version (serve --trust verifies them)
_WATCHED_EXTRAS = ("plugin.so", "signatures")

_GONE = (errno.ENOENT, errno.ENOTDIR)  # what a missing directory or file looks like
_DENIED = (errno.EACCES, errno.EPERM)  # a version this user may not read: said as such
# Conditions of this machine, not of a version's files: retried, never a verdict on a version.
_MACHINE = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOSPC, errno.EIO, errno.ENOBUFS,
            errno.EAGAIN, errno.EINTR, errno.EDQUOT, errno.ESTALE}


class ScanFailed(Exception):
    """The repository could not be read now; what was reported before still stands."""


def _scan_failed(what: Path | str, exc: OSError) -> ScanFailed:
    return ScanFailed(f"cannot read {what}: {exc.strerror or exc}")


def escaping_symlink(root: Path, vdir: Path) -> str | None:
    """The first entry of `vdir` (or `vdir` itself) that is a symlink resolving outside `root`."""
    base = root.resolve()
    for path in [vdir, *sorted(vdir.iterdir())]:
        if path.is_symlink() or path == vdir:
            try:
                path.resolve(strict=True).relative_to(base)
            except (OSError, ValueError, RuntimeError):
                return path.name
    return None


def denied(path: str | Path) -> str:
    """What the index and log say about a file or directory this process may not read (the
    path relative to the repository)."""
    return f"permission denied: {path} (serve runs as uid {os.geteuid()})"


def stat_key(st: os.stat_result) -> tuple:
    # a file restored with its old size and mtime (cp -p, a backup) still has a new inode/ctime
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _signature(path: Path, names: tuple[str, ...] | None) -> tuple | None:
    """What changes when a version's files change. With `names` (the files its manifest lists,
    known once it was read), only those are stat'ed: the directory's own ctime covers files
    added or removed, so unrelated files cost nothing per poll. Without, every file."""
    st = None
    try:
        st = path.stat()
        if names is None:
            entries = sorted((e.name, stat_key(e.stat())) for e in os.scandir(path)
                             if e.is_file())
        else:
            entries = [(n, _stat_or_none(path / n)) for n in names]
    except OSError as exc:
        if exc.errno in _MACHINE:
            raise _scan_failed(path, exc) from None
        if exc.errno in _DENIED and st is not None:
            return (stat_key(st), "denied")  # a chmod changes its ctime: checked again then
        return None
    return (stat_key(st), tuple(entries))


def _stat_or_none(path: Path) -> tuple | None:
    try:
        return stat_key(path.lstat())
    except FileNotFoundError:
        return None


class RepositorySource:
    def __init__(
        self,
        repo: str | Path,
        on_versions: OnVersions,
        on_invalid: OnInvalid | None = None,
        *,
        on_scan_error: OnScanError | None = None,
        check_version: CheckVersion | None = None,
        poll_interval: float = 2.0,
        debounce_ms: int = 200,
        use_watchfiles: bool = True,
    ):
        self.repo = Path(repo)
        self._on_versions = on_versions
        self._on_invalid = on_invalid or (lambda m, v, r: None)
        self._on_scan_error = on_scan_error or (lambda message: None)
        self._check_version = check_version  # e.g. signatures under serve --trust
        self.scan_error: str | None = None  # why the last scan failed; None once one succeeds
        self.poll_interval = max(0.05, float(poll_interval))
        self.debounce_ms = debounce_ms
        self.use_watchfiles = use_watchfiles
        # dir -> (signature, error, the files whose stats make its signature)
        self._cache: dict[Path, tuple[tuple, str | None, tuple[str, ...] | None]] = {}
        self._pending_sig: dict[Path, tuple] = {}  # taken during a check, before hashing
        self._last: dict[str, tuple] = {}  # model -> last reported state
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._scan_lock = threading.Lock()
        self.invalid: dict[tuple[str, str], str] = {}  # (model, version) -> reason, current

    def check(self) -> None:
        if not self.repo.is_dir():
            raise UserError(f"model repository {self.repo} is not a directory")

    def models(self) -> list[str]:
        """Model directories in the repository. Raises ScanFailed when it cannot be read now."""
        out = []
        try:
            entries = sorted(os.scandir(self.repo), key=lambda e: e.name)
        except OSError as exc:
            if exc.errno in _GONE:
                return []
            raise _scan_failed(self.repo, exc) from None
        for e in entries or ():
            if e.name.startswith(".") or not e.is_dir():
                continue
            try:
                check_model_name(e.name)
            except UserError:
                continue
            out.append(e.name)
        return out

    def scan(self, force: bool = False) -> None:
        """Scan the whole repository once and report models whose state changed."""
        with self._scan_lock:
            try:
                seen = set()
                for model in self.models():
                    seen.add(model)
                    self._scan_model(model, force)
            except ScanFailed as exc:
                return self._scan_result(str(exc))
            for model in list(self._last):
                if model not in seen:
                    del self._last[model]
                    self._on_versions(model, {}, None)
            self._scan_result(None)
        return None

    def scan_model(self, model: str, force: bool = True) -> None:
        with self._scan_lock:
            try:
                if model in self.models():
                    self._scan_model(model, force)
            except ScanFailed as exc:
                self._scan_result(str(exc))

    def _scan_result(self, error: str | None) -> None:
        """Log a scan failure once (ERROR) and its end (INFO); tell the owner of the index."""
        if error == self.scan_error:
            return
        if error is not None:
            log.error("repository scan failed, every loaded version keeps serving: %s", error)
        else:
            log.info("repository scan works again")
        self.scan_error = error
        self._on_scan_error(error)

    def _scan_model(self, model: str, force: bool) -> None:
        mdir = self.repo / model
        versions: dict[str, Path] = {}
        present: set[str] = set()
        try:
            entries = list(os.scandir(mdir))
            self._model_readable(model, None)
        except OSError as exc:
            if exc.errno in _DENIED and not self._last.get(model, ((),))[0]:
                self._model_readable(model, denied(f"{model}/"))  # nothing served to keep
            elif exc.errno not in _GONE:
                raise _scan_failed(f"{model}/", exc) from None
            entries = None
        for e in entries or ():
            if e.name.startswith(".") or not is_semver(e.name) or not e.is_dir():
                continue
            vdir = mdir / e.name
            present.add(e.name)
            if self._verify(model, e.name, vdir) is not None:
                continue
            found = [(e.name, vdir)]  # its variants only beside a good fp32 version
            found += [(variant_key(e.name, p), variant_dir(vdir, p)) for p in self._variants(vdir)]
            for key, kdir in found:
                present.add(key)
                if key != e.name and self._verify(model, key, kdir) is not None:
                    continue
                versions[key] = kdir
                if self.invalid.pop((model, key), None) is not None:
                    self._on_invalid(model, key, None)
        for key in [k for k in self.invalid if k[0] == model and k[1] and k[1] not in present]:
            del self.invalid[key]
            self._on_invalid(model, key[1], None)
        labels = self._read_labels(mdir) if entries is not None else None
        state = (tuple(sorted((v, str(p)) for v, p in versions.items())), json.dumps(labels, sort_keys=True))
        if force or self._last.get(model) != state:
            self._last[model] = state
            self._on_versions(model, versions, labels)

    @staticmethod
    def _variants(vdir: Path) -> list[str]:
        try:
            return variant_precisions(vdir)
        except OSError as exc:
            if exc.errno in _MACHINE:
                raise _scan_failed(f"{vdir.name}/variants", exc) from None
            return []

    def _model_readable(self, model: str, reason: str | None) -> None:
        """A model directory this process may not list is reported as (model, "", reason)."""
        if self.invalid.get((model, "")) == reason:
            return
        if reason is None:
            del self.invalid[(model, "")]
        else:
            self.invalid[(model, "")] = reason
            log.warning("ignoring model %s: %s", model, reason)
        self._on_invalid(model, "", reason)

    def _verify(self, model: str, version: str, vdir: Path) -> str | None:
        cached = self._cache.get(vdir)
        sig = _signature(vdir, cached[2] if cached is not None else None)
        if sig is None:
            return "unreadable"
        if cached is not None and cached[0] == sig:
            return cached[1]
        where = f"{model}/{version}"
        names_out: list[str] = []  # the files the manifest lists, once it is read
        try:
            error = self._check(model, version, vdir, where, names_out)
        except UserError as exc:
            error = exc.message.replace(str(vdir), where)
        except OSError as exc:
            if exc.errno in _MACHINE:
                raise _scan_failed(where, exc) from None
            error = (denied(self._relative(exc.filename or vdir)) if exc.errno in _DENIED
                     else f"{where}: {exc.strerror or exc}")
        self._cache[vdir] = (self._pending_sig.pop(vdir, sig), error,
                             (MANIFEST_NAME, *names_out, *_WATCHED_EXTRAS))
        if error is not None:
            self.invalid[(model, version)] = error
            log.warning("ignoring %s %s: %s", model, version, error)
            self._on_invalid(model, version, error)
        return error

    def _relative(self, path: str | Path) -> str:
        """A path inside the repository as the index shows it (no server paths)."""
        try:
            return str(Path(path).relative_to(self.repo))
        except ValueError:
            return Path(path).name

    def _check(self, model: str, version: str, vdir: Path, where: str,
               names_out: list[str]) -> str | None:
        """Why this version dir cannot serve, or None. Raises UserError / OSError. Its
        signature is taken once the manifest is read and before the files are hashed, so a
        change made while hashing is seen by the next poll."""
        escaping = escaping_symlink(self.repo, vdir)
        if escaping is not None:
            return f"{where}: '{escaping}' is a symlink that leads out of the repository"
        manifest = read_manifest(vdir)
        said = variant_key(manifest.version, manifest.precision)
        mismatch = manifest.name != model or said != version  # no file it names is read then
        if not mismatch:
            names_out.extend(sorted(manifest.files))
        if not mismatch and manifest.precision != "fp32":  # re-checked when its fp32 changes
            names_out.extend(f"../../{f}" for f in (MANIFEST_NAME, *sorted(manifest.shared_files)))
        before = _signature(vdir, (MANIFEST_NAME, *names_out, *_WATCHED_EXTRAS))
        if before is not None:
            self._pending_sig[vdir] = before
        if mismatch:
            return (f"{where}: the manifest says {manifest.name} {said}, "
                    f"the directory is {model}/{version}")
        verify_files(vdir, manifest)
        why = cpu_refusal(manifest.requires, manifest.precision)
        if why is not None:  # a variant this CPU cannot run: said in the index, never loaded
            return f"{where}: {why}"
        if self._check_version is not None:
            why = self._check_version(vdir, model, manifest.version)  # a variant: its version
            if why is not None:
                return f"{where}: {why}"
        return None

    def _read_labels(self, mdir: Path) -> object:
        path = mdir / LABELS_FILE
        try:
            text = read_control_file(path).decode("utf-8", "replace")
        except OSError as exc:
            if exc.errno in _MACHINE:
                raise _scan_failed(f"{mdir.name}/{LABELS_FILE}", exc) from None
            if exc.errno not in _GONE:
                log.warning("ignoring %s: %s", path, exc.strerror or exc)
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            log.warning("ignoring %s: not valid JSON (%s)", path, exc)
            return None

    # -- background watching ---------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="paddlehot-source", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        if self.use_watchfiles:
            try:
                self._watch()
                return
            except Exception as exc:  # noqa: BLE001 - e.g. inotify limits: fall back to polling
                log.warning("file watching unavailable (%s); polling every %.1f s", exc, self.poll_interval)
        while not self._stop.wait(self.poll_interval):
            self._safe_scan()

    def _watch(self) -> None:
        from watchfiles import watch

        for _changes in watch(
            self.repo,
            stop_event=self._stop,
            debounce=self.debounce_ms,
            step=50,
            rust_timeout=int(self.poll_interval * 1000),
            yield_on_timeout=True,
            raise_interrupt=False,
        ):
            if self._stop.is_set():
                return
            self._safe_scan()

    def _safe_scan(self) -> None:
        try:
            self.scan()
        except Exception:
            log.exception("repository scan failed")
