"""`serve --state-dir DIR`: admin label and canary changes survive a restart.

The repository may be read-only (an image, a mount), so the server keeps what the admin API
changed in its own directory: one `NAME.labels.json` per model, written atomically (temp file,
fsync, rename, fsync of the directory), read at start. Deleting a model's admin labels deletes
its file: the repository's labels.json applies again.

It also holds the load journal and the quarantine (core/quarantine.py): a version that killed
the process while loading is not loaded again after the restart.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from paddlehot_cli.core.model_state import path_signature
from paddlehot_cli.core.quarantine import Quarantine
from paddlehot_cli.core.router import Labels
from paddlehot_cli.core.small_files import sync_dir, write_durably
from paddlehot_cli.core.versions import check_model_name
from paddlehot_cli.errors import UserError

log = logging.getLogger("paddlehot.serve")
SUFFIX = ".labels.json"  # the quarantine's two files never end so


class StateDir:
    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create --state-dir {self.path}: {exc.strerror}") from None
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise UserError(f"--state-dir {self.path} is not writable")

    def quarantine(self) -> Quarantine:
        return Quarantine(self.path, path_signature)

    def load(self) -> dict[str, Labels]:
        """Admin labels per model; a damaged file is skipped with a warning."""
        out: dict[str, Labels] = {}
        for f in sorted(self.path.glob(f"*{SUFFIX}")):
            name = f.name[: -len(SUFFIX)]
            try:
                check_model_name(name)
                out[name] = Labels.from_json(json.loads(f.read_text()), str(f))
            except (OSError, ValueError, UserError) as exc:
                log.warning("ignoring %s: %s", f, getattr(exc, "message", exc))
        return out

    def save(self, model: str, labels: Labels | None) -> None:
        target = self.path / f"{check_model_name(model)}{SUFFIX}"
        if labels is None:
            target.unlink(missing_ok=True)
            sync_dir(self.path)
        else:
            write_durably(target, labels.to_json())  # fsync, rename, fsync of the directory
