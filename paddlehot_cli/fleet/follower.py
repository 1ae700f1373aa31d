"""`serve --follow`: a remote source. Every interval it lists a registry repository's tags, picks
the versions the policy wants (the newest N, the newest N in a SemVer range, or the version a
label such as `stable` points at), and pulls new ones into REPO exactly as `paddlehot pull` does;
the repository watcher then swaps them in like any publish. Following a label also writes it into
REPO/NAME/labels.json, so moving the label in the registry moves the box's traffic (roll out,
roll back).

Offline-first: an unreachable or failing registry never touches what is served. The follower
backs off (interval, doubling, capped), and says so in the log, /metrics and
/v2/repository/index. A version that fails its checks is refused (reason logged and shown) and
not tried again until its tag moves or the refusal ages out.
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from paddlehot_cli.core.signatures import Trust
from paddlehot_cli.core.source import LABELS_FILE
from paddlehot_cli.core.variants import base_version, is_variant_key, variant_key
from paddlehot_cli.core.versions import is_semver, sort_key
from paddlehot_cli.fleet.client import RegistryClient
from paddlehot_cli.fleet.errors import BadReference, FleetError, RegistryHTTPError
from paddlehot_cli.fleet.pull import pull_resolved, range_spec, resolve
from paddlehot_cli.fleet.reference import Reference, is_label, parse_reference

log = logging.getLogger("paddlehot.follow")
SWAP_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


def parse_follow(text: str) -> Reference:
    """`oci://HOST/NS/NAME` (newest), `...:LABEL` or `...:VERSION`, `...@RANGE`."""
    ref = parse_reference(text)
    if ref.digest:
        raise BadReference(f"--follow {text}: follow a tag or a range, not a digest",
                           hint="pin a digest with `paddlehot pull` instead")
    if ref.range:
        range_spec(ref.range)
    return ref


@dataclass
class Remote:
    """What the follower knows about one followed reference (shown in the index)."""

    ref: Reference
    state: str = "starting"  # starting | ok | unreachable | error
    error: str = ""
    failures: int = 0
    next_try: float = 0.0  # monotonic
    last_success: float | None = None  # wall clock
    label_digest: dict[str, str] = field(default_factory=dict)  # label -> digest last applied
    tag_digest: dict[str, str] = field(default_factory=dict)  # version tag -> digest applied
    label_version: dict[str, str] = field(default_factory=dict)  # label -> its version, applied
    # (tag, digest) -> (version or "", reason, when): not tried again until the tag moves
    refused: dict[tuple[str, str], tuple[str, str, float]] = field(default_factory=dict)

    def view(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"remote": str(self.ref), "state": self.state}
        if self.error:
            doc["error"] = self.error
        if self.last_success is not None:
            doc["last_success"] = datetime.fromtimestamp(self.last_success, timezone.utc).isoformat()
        if self.state in ("unreachable", "error"):
            doc["retry_in_s"] = round(max(0.0, self.next_try - time.monotonic()), 1)
        return doc


class _Metrics:
    def __init__(self, registry: CollectorRegistry, follower: Follower):
        self.pulls = Counter("paddlehot_fleet_pulls", "Versions pulled from a registry",
                             ["model"], registry=registry)
        self.failures = Counter("paddlehot_fleet_pull_failures",
                                "Failed registry syncs and refused versions, by reason",
                                ["reason"], registry=registry)
        self.bytes = Counter("paddlehot_fleet_pulled_bytes", "Bytes downloaded from registries",
                             ["model"], registry=registry)
        self.reused = Counter("paddlehot_fleet_reused_bytes",
                              "Bytes of pulled versions copied from local versions instead",
                              ["model"], registry=registry)
        self.tag_to_serve = Histogram(
            "paddlehot_fleet_tag_move_to_serve_seconds",
            "From this box seeing a tag change in the registry (a new version tag, a moved "
            "label) to that version taking traffic here", ["model"], buckets=SWAP_BUCKETS,
            registry=registry)
        self.rollbacks = Counter("paddlehot_fleet_rollbacks",
                                 "Followed labels moved back to an older version in the registry",
                                 ["model", "label"], registry=registry)
        self.follower = follower
        self.registry = registry
        registry.register(self)

    def collect(self):
        up = GaugeMetricFamily("paddlehot_fleet_registry_up",
                               "1 when the last sync with the followed registry worked", labels=["remote"])
        for remote in self.follower.remotes:
            up.add_metric([str(remote.ref)], 1 if remote.state == "ok" else 0)
        return [up]


class Follower:
    """A serve extension (serve/extensions.py): serve shows its index rows, gives it Manager
    events and starts and stops it; it never reaches into the server."""

    brings_models = True  # an empty box waits for its registry instead of exiting

    def __init__(self, repo: Path, refs: list[Reference], *, interval: float = 30.0,
                 insecure: bool = False, latest: int = 1,
                 registry: CollectorRegistry | None = None, refuse_retry_s: float | None = None,
                 trust: Trust | None = None):
        self.repo = Path(repo)
        self.remotes = [Remote(ref) for ref in refs]
        self.interval = max(0.05, float(interval))
        self.max_backoff = max(self.interval, min(300.0, 30 * self.interval))
        # a refused version is tried again after 10 intervals (docs/fleet.md), or when its tag moves
        self.refuse_retry_s = refuse_retry_s if refuse_retry_s is not None else 10 * self.interval
        self.trust = trust
        self.insecure = insecure
        self.latest = max(1, latest)
        self.metrics = _Metrics(registry or CollectorRegistry(), self)
        self._clients: dict[str, RegistryClient] = {}
        self._seen: dict[tuple[str, str], float] = {}  # (model, version) -> tag change seen
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="paddlehot-follow", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for client in self._clients.values():
            client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            wait = min(r.next_try for r in self.remotes) - now
            if wait > 0 and self._stop.wait(wait):
                return
            self.sync_once(due_only=True)

    def sync_once(self, due_only: bool = False) -> None:
        """One round: every (due) remote is synced; never raises."""
        for remote in self.remotes:
            if self._stop.is_set():
                return
            if due_only and remote.next_try > time.monotonic():
                continue
            try:
                self._sync(remote)
            except FleetError as exc:
                self._failed(remote, exc)
            except Exception as exc:  # a bug must not stop serving
                log.exception("following %s failed", remote.ref)
                self._failed(remote, FleetError(f"internal error: {type(exc).__name__}: {exc}"))

    # -- one sync ------------------------------------------------------------------------------

    def _client(self, registry: str) -> RegistryClient:
        if registry not in self._clients:
            self._clients[registry] = RegistryClient(registry, insecure=self.insecure)
        return self._clients[registry]

    def _wanted(self, remote: Remote, tags: list[str]) -> list[str]:
        """The tags to sync: the versions followed, each followed by its precision variants'
        tags (VERSION-PRECISION: pull places a variant inside its version, so after it)."""
        ref = remote.ref
        if ref.tag:
            picked = [ref.tag] if ref.tag in tags else []
        else:
            pool = [t for t in tags if is_semver(t)]
            if ref.range:
                spec = range_spec(ref.range)
                pool = [t for t in pool if spec.contains(t)]
            picked = sorted(pool, key=sort_key, reverse=True)[: self.latest]
        variants = sorted(t for t in tags if is_variant_key(t))
        return [k for t in picked for k in (t, *(v for v in variants if base_version(v) == t))]

    def _sync(self, remote: Remote) -> None:
        client = self._client(remote.ref.registry)
        try:
            tags = client.list_tags(remote.ref.repository)
        except RegistryHTTPError as exc:
            if exc.status != 404:
                raise
            tags = []  # nothing pushed yet
        for tag in self._wanted(remote, tags):
            self._sync_tag(client, remote, tag)
            if is_label(tag) and tag in remote.label_version:  # the labelled version's variants,
                version = remote.label_version[tag]  # also those derived after the label moved
                for key in sorted(t for t in tags if is_variant_key(t) and base_version(t) == version):
                    self._sync_tag(client, remote, key)
        if remote.failures:
            log.info("following %s: registry reachable again", remote.ref)
        with self._lock:
            remote.state, remote.error, remote.failures = "ok", "", 0
            remote.last_success = time.time()
            remote.next_try = time.monotonic() + self.interval

    def _sync_tag(self, client: RegistryClient, remote: Remote, tag: str) -> None:
        ref = remote.ref
        model = ref.install_as
        digest, got = "", None
        try:
            if self._still_refused(remote, tag, ""):  # its manifest itself was refused
                return
            _, _, digest = client.get_manifest(ref.repository, tag)
            applied = (remote.label_digest if is_label(tag) else remote.tag_digest).get(tag)
            if applied == digest or self._still_refused(remote, tag, digest):
                return
            seen = time.time()  # the tag's change, as this box sees it
            got = resolve(client, ref, digest if is_label(tag) else tag)
            result = pull_resolved(client, ref, got, self.repo, trust=self.trust)
        except FleetError as exc:
            if exc.retry:
                raise
            self._refuse(remote, tag, digest, got.key if got else tag, exc)
            return
        remote.refused.pop((tag, digest), None)
        if not result.already_present:
            self._pulled(result)
        if is_label(tag):
            remote.label_digest[tag] = digest
            remote.label_version[tag] = got.version
            self._move_label(remote, model, tag, got.version, seen, result.already_present)
        else:
            remote.tag_digest[tag] = digest
            if not result.already_present and result.added == []:
                self._expect(model, got.key, seen)

    def _expect(self, model: str, version: str, seen: float) -> None:
        if self._thread is not None:  # not the catch-up at startup
            with self._lock:
                self._seen[(model, version)] = seen

    def _still_refused(self, remote: Remote, tag: str, digest: str) -> bool:
        refused = remote.refused.get((tag, digest))
        return refused is not None and time.time() - refused[2] < self.refuse_retry_s

    def _pulled(self, result: Any) -> None:
        m = self.metrics
        m.pulls.labels(result.name).inc()
        m.bytes.labels(result.name).inc(result.downloaded_bytes)
        m.reused.labels(result.name).inc(result.reused_bytes)
        added = f"; added {', '.join(result.added)}" if result.added else ""
        log.info("pulled %s %s from %s: %d bytes downloaded, %d reused, %.2f s%s%s",
                 result.name, variant_key(result.version, result.precision), result.reference,
                 result.downloaded_bytes,
                 result.reused_bytes, result.seconds, f" ({result.note})" if result.note else "",
                 added)

    def _move_label(self, remote: Remote, model: str, label: str, version: str,
                    seen: float, present: bool) -> None:
        """Point the box's label where the registry's points; a move to an older version is a
        rollback: logged and counted."""
        before = self._write_label(model, label, version)
        if before == version:
            return
        if before is not None and is_semver(before) and sort_key(version) < sort_key(before):
            self.metrics.rollbacks.labels(model, label).inc()
            log.warning("rollback: label %s of %s moved back %s -> %s (tag moved in %s)",
                        label, model, before, version, remote.ref)
        else:
            log.info("label %s of %s -> %s (was %s; tag moved in %s)", label, model, version,
                     before or "unset", remote.ref)
        if present and self._thread is not None:  # a version this box has: the label is the move
            self._observe(model, version, seen)
        else:
            self._expect(model, version, seen)

    def _write_label(self, model: str, label: str, version: str) -> str | None:
        """Set one label in REPO/NAME/labels.json (other labels kept), atomically; return the
        version it pointed at before."""
        path = self.repo / model / LABELS_FILE
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            doc = {}
        if not isinstance(doc, dict):
            doc = {}
        labels = doc.setdefault("labels", {})
        if not isinstance(labels, dict):
            labels = doc["labels"] = {}
        before = labels.get(label)
        if before == version:
            return before
        labels[label] = version
        fd, tmp = tempfile.mkstemp(prefix=f".{LABELS_FILE}.", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent=2)
        os.replace(tmp, path)
        return before if isinstance(before, str) else None

    def _refuse(self, remote: Remote, tag: str, digest: str, version: str,
                exc: FleetError) -> None:
        version = version if is_semver(version) else ""
        with self._lock:
            remote.refused[(tag, digest)] = (version, exc.message, time.time())
        self.metrics.failures.labels(exc.reason).inc()
        log.warning("refused %s %s (tag %s of %s): %s", remote.ref.install_as,
                    version or "?", tag, remote.ref, exc.message)

    def _failed(self, remote: Remote, exc: FleetError) -> None:
        with self._lock:
            first = remote.failures == 0 or remote.error != exc.message
            remote.failures += 1
            remote.state = "unreachable" if exc.reason == "unreachable" else "error"
            remote.error = exc.message
            delay = min(self.max_backoff, self.interval * 2 ** (remote.failures - 1))
            remote.next_try = time.monotonic() + delay * random.uniform(0.8, 1.0)
        self.metrics.failures.labels(exc.reason).inc()
        (log.warning if first else log.info)(
            "following %s: %s; still serving what REPO has, retry in %.1f s (attempt %d)",
            remote.ref, exc.message, delay, remote.failures)

    # -- hooks for serve -----------------------------------------------------------------------

    def on_event(self, kind: str, model: str, version: str | None, info: dict) -> None:
        """Manager events: time from this box seeing a tag change to the version taking
        traffic (its load, or the swap to it). A label moved onto a version that is already
        warm is counted when the label is written (_move_label): the routing follows at the
        repository watcher's next scan."""
        if kind not in ("swap", "loaded") or version is None:
            return
        with self._lock:
            seen = self._seen.pop((model, version), None)
        if seen is not None:
            self._observe(model, version, seen)

    def _observe(self, model: str, version: str, seen: float) -> None:
        seconds = max(0.0, time.time() - seen)
        self.metrics.tag_to_serve.labels(model).observe(seconds)
        log.info("%s %s serving %.2f s after the tag move was seen", model, version, seconds)

    def index_rows(self, rows: list[dict]) -> list[dict]:
        """/v2/repository/index: each followed model's rows get a `follow` entry; refused
        versions and models not pulled yet get rows of their own."""
        with self._lock:
            remotes = [(r, r.view(), dict(r.refused)) for r in self.remotes]
        for remote, view, refused in remotes:
            name = remote.ref.install_as
            mine = [row for row in rows if row.get("name") == name]
            for row in mine:
                row.setdefault("follow", []).append(view)
            have = {row.get("version") for row in mine}
            for (tag, _digest), (version, reason, _at) in refused.items():
                if version not in have:
                    rows.append({"name": name, "version": version, "state": "UNAVAILABLE",
                                 "reason": f"refused (tag {tag}): {reason}", "follow": [view]})
            if not mine and not refused:
                rows.append({"name": name, "version": "", "state": "UNAVAILABLE",
                             "reason": f"following {remote.ref}: nothing pulled yet",
                             "follow": [view]})
        return rows


def follower_for(follow: list[str], interval: float, insecure: bool
                 ) -> Callable[[Any], Follower]:
    """The extension factory `serve --follow` passes to the serve Runtime: it builds the
    follower from the runtime's repository, version policy and metrics registry."""
    refs = [parse_follow(text) for text in follow]

    def make(runtime: Any) -> Follower:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per poll otherwise
        return Follower(runtime.cfg.repo, refs, interval=interval, insecure=insecure,
                        latest=runtime.cfg.policy.latest, registry=runtime.metrics.registry,
                        trust=runtime.cfg.trust)

    return make
