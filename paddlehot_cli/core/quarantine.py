"""Quarantine: a version that killed the process while loading is not loaded again on restart.

A Paddle abort or a segfault in a version's load or warm-up ends the whole process; under
systemd (Restart=on-failure) with `--follow` it would restart into the same crash forever. So
the load harness records which version it is loading in `loading.json` before it starts and
removes the record when the load ends (loaded or failed: either way the process survived). A
record found at start-up therefore names the version that was loading when the process died:
it is quarantined (`quarantine.json`), and the Manager treats it as a version that failed to
load, so the previous version serves and the index shows why.

A quarantine is lifted by republishing the version (its files change: the path signature taken
at quarantine time no longer matches), by deleting it, or by an explicit admin load of the
model (`POST /v2/repository/models/NAME/load`). Both files are written durably (temp file,
fsync, rename, fsync of the directory) and bounded (MAX_ENTRIES, reasons capped), so a crash
between two writes leaves the old or the new state, never half of one.

A clean shutdown in the middle of a load clears the record: only a death counts.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

from paddlehot_cli.core.small_files import sync_dir, write_durably

log = logging.getLogger("paddlehot.manager")
LOADING_FILE = "loading.json"
QUARANTINE_FILE = "quarantine.json"
MAX_ENTRIES = 64  # the oldest quarantine goes first: the file stays small whatever happens
MAX_READ = 1 << 20
MAX_REASON = 400


def _read(path: Path) -> object:
    """A state file's JSON; None when missing, damaged or oversized (said in the log)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_READ + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("ignoring %s: %s", path, exc.strerror or exc)
        return None
    try:
        if len(raw) > MAX_READ:
            raise ValueError("larger than 1 MiB")
        return json.loads(raw)
    except ValueError as exc:
        log.warning("ignoring %s: %s", path, exc)
        return None


def _number(value: object) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1e11
    return float(value) if ok else 0.0


class Quarantine:
    """The state dir's crash record and quarantine list. `Quarantine(None)` remembers nothing
    (serve without --state-dir): loads are not journaled and nothing is quarantined."""

    def __init__(self, state_dir: Path | None, signature=None):
        self.dir = Path(state_dir) if state_dir is not None else None
        self._signature = signature  # path -> str (model_state.path_signature)
        self._lock = threading.Lock()
        self.entries: dict[str, dict[str, dict]] = {}  # model -> version -> entry
        if self.dir is not None:
            self._read_entries()
            self._recover()

    def _read_entries(self) -> None:
        doc = _read(self.dir / QUARANTINE_FILE)
        if not isinstance(doc, dict):
            return
        for model, versions in doc.items():
            if isinstance(versions, dict):
                self.entries[model] = {v: {**e, "at": _number(e.get("at"))}
                                       for v, e in versions.items()
                                       if isinstance(e, dict) and isinstance(e.get("reason"), str)}

    def _recover(self) -> None:
        """A loading record left by a process that died: quarantine that version."""
        record = _read(self.dir / LOADING_FILE)
        if isinstance(record, dict) and all(isinstance(record.get(k), str)
                                            for k in ("model", "version", "path")):
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(_number(record.get("at"))))
            reason = (f"quarantined: the server died while loading it (pid {record.get('pid')}, "
                      f"{when}); republish it or POST /v2/repository/models/"
                      f"{record['model']}/load to try again")
            sig = self._signature(Path(record["path"])) if self._signature else ""
            self.entries.setdefault(record["model"], {})[record["version"]] = {
                "reason": reason, "signature": sig, "at": time.time()}
            log.error("%s %s: %s", record["model"], record["version"], reason)
            if not self._save():
                return  # the record stays: the next start quarantines it again
        (self.dir / LOADING_FILE).unlink(missing_ok=True)

    # -- the load harness's journal ------------------------------------------------------

    def begin(self, model: str, version: str, path: Path) -> None:
        """Record the load about to start. A state dir that cannot be written (full disk) does
        not stop the load: it only goes unprotected, said in the log."""
        if self.dir is None:
            return
        try:
            write_durably(self.dir / LOADING_FILE, {"model": model, "version": version,
                                                    "path": str(path), "pid": os.getpid(),
                                                    "at": time.time()})
        except OSError as exc:
            log.warning("cannot record the load of %s %s in %s (%s): a crash in it would not "
                        "be quarantined", model, version, self.dir, exc.strerror or exc)

    def end(self) -> None:
        """The load ended with the process alive (loaded, failed, or a clean shutdown)."""
        if self.dir is None:
            return
        try:
            (self.dir / LOADING_FILE).unlink(missing_ok=True)
            sync_dir(self.dir)
        except OSError as exc:
            log.warning("cannot clear %s: %s", self.dir / LOADING_FILE, exc.strerror or exc)

    # -- what the Manager asks -----------------------------------------------------------

    def blocked(self, model: str, available: dict[str, Path]) -> dict[str, tuple[str, str]]:
        """The quarantined versions among `available`: version -> (signature, reason). An
        entry whose version was republished (its signature changed) or deleted is lifted."""
        out, lifted = {}, []
        for version, entry in self.entries.get(model, {}).items():
            path = available.get(version)
            sig = self._signature(path) if path is not None and self._signature else ""
            if path is not None and sig == entry.get("signature"):
                out[version] = (sig, entry["reason"])
            elif path is not None:
                lifted.append((version, "its files changed (republished)"))
        for version, why in lifted:
            self.lift(model, version, why)
        return out

    def lift(self, model: str, version: str | None = None, why: str = "admin load") -> None:
        with self._lock:
            versions = self.entries.get(model, {})
            gone = [v for v in versions if version is None or v == version]
            for v in gone:
                del versions[v]
                log.warning("%s %s: quarantine lifted (%s)", model, v, why)
            if not versions:
                self.entries.pop(model, None)
            if gone:
                self._save()

    def _save(self) -> bool:
        """Write the list (bounded); False when the state dir cannot be written now (the
        quarantine still holds in this process)."""
        if self.dir is None:
            return True
        flat = sorted(((e["at"], m, v) for m, vs in self.entries.items()
                       for v, e in vs.items()), reverse=True)
        for _, m, v in flat[MAX_ENTRIES:]:
            del self.entries[m][v]
        doc = {m: {v: {**e, "reason": e["reason"][:MAX_REASON]} for v, e in vs.items()}
               for m, vs in self.entries.items() if vs}
        try:
            write_durably(self.dir / QUARANTINE_FILE, doc)
        except OSError as exc:
            log.error("cannot write %s: %s", self.dir / QUARANTINE_FILE, exc.strerror or exc)
            return False
        return True
