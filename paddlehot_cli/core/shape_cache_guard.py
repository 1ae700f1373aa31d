"""Paddle's oneDNN shape cache and plugins never share a process.

With a shape cache (onednn_cache_capacity above 0) every Paddle run counts Paddle's process-wide
oneDNN kernel map without the map's lock; a plugin's predictors run in parallel, without the
GIL, and change that map (a new shape, a predictor created or destroyed, a thread exiting), so a
package run beside them can crash the process (native/pdcapi/src/thread_runs.cc). Package runs
among themselves are safe: they hold the GIL. So the first to come decides for the process:
once a plugin is loaded, packages asking for a shape cache get 0 (said once in the log); once a
package runs with one, loading a plugin is refused with one clear line.
"""

from __future__ import annotations

import logging
import threading

from paddlehot_cli.errors import PackageError

log = logging.getLogger("paddlehot.core")

_lock = threading.Lock()
_plugins = False
_shape_cached: str | None = None  # the first package that runs a shape cache, as said in errors
_said: set[str] = set()


def package_capacity(capacity: int, what: str) -> int:
    """The shape cache capacity a package at `what` may use in this process."""
    global _shape_cached
    if capacity <= 0:
        return capacity
    with _lock:
        if _plugins:
            if what not in _said:
                _said.add(what)
                log.warning("%s: onednn_cache_capacity %d ignored (0 used): plugins run in this "
                            "process, and Paddle's shape cache is not safe beside them",
                            what, capacity)
            return 0
        if _shape_cached is None:
            _shape_cached = f"{what} (onednn_cache_capacity {capacity})"
        return capacity


def claim_for_plugin(shown: object) -> None:
    """Called before a plugin loads: refused once a package runs a shape cache here."""
    global _plugins
    with _lock:
        if _shape_cached is not None:
            raise PackageError(
                f"{shown}: cannot load a plugin beside {_shape_cached}: a package running "
                "Paddle's oneDNN shape cache can crash beside a plugin's parallel runs",
                hint="set onednn_cache_capacity 0 for that model (serving.json or "
                     "--onednn-cache-capacity), or serve this version as a package")
        _plugins = True
