"""Wire a repository Source, the Manager, metrics and the HTTP app together, and run uvicorn.

Used by `paddlehot serve`, by the tests (a server in a background thread on a free port) and by
the benchmarks. uvicorn handles SIGTERM/SIGINT: it stops accepting, lets in-flight requests
finish (each holds its version's handle), then we stop the Source and the Manager (which drains
and releases every version) and return.
"""

from __future__ import annotations

import errno
import functools
import logging
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paddlehot_cli.core import cpu_affinity, load
from paddlehot_cli.core.loaded import Batching, Loaded
from paddlehot_cli.core.manager import Manager, ManagerConfig
from paddlehot_cli.core.serving_settings import ServingSettings, SettingsResolver
from paddlehot_cli.core.signatures import Trust
from paddlehot_cli.core.source import RepositorySource, ScanFailed
from paddlehot_cli.core.version_policy import VersionPolicy
from paddlehot_cli.errors import UserError
from paddlehot_cli.serve import checks
from paddlehot_cli.serve.app import ServeOptions, Server
from paddlehot_cli.serve.client_limits import ClientLimits
from paddlehot_cli.serve.extensions import ExtensionFactory, ServeExtension
from paddlehot_cli.serve.metrics import Metrics
from paddlehot_cli.serve.state_dir import StateDir
from paddlehot_cli.serve.tls import ServerTls

log = logging.getLogger("paddlehot.serve")


@dataclass
class ServeConfig:
    repo: Path
    host: str = "127.0.0.1"
    port: int = 8000
    threads: int = 1
    poll_interval: float = 2.0
    prefer: str = "package"
    admin_token: str | None = None
    policy: VersionPolicy = field(default_factory=VersionPolicy)
    resource_preserving: bool = False
    batch_size: int = 1
    batch_delay_ms: float = 0.0
    pool_max: int = 1
    max_body_mb: float = 64.0
    # what no client may exceed (serve/client_limits.py)
    max_connections: int = 512
    max_connections_per_client: int = 64
    max_buffered_mb: float = 256.0
    body_timeout_s: float = 30.0
    head_timeout_s: float = 10.0
    grpc_idle_s: float = 60.0
    use_watchfiles: bool = True
    breaker: dict = field(default_factory=dict)
    graceful_timeout_s: float = 30.0
    max_queue: int = 0  # per version; 0: from the pool size (32 per worker and batch slot)
    state_dir: Path | None = None  # admin label changes persist here
    grpc_port: int | None = None  # gRPC front end (serve/grpc_server.py); None: off
    loop_cpu: str = "auto"  # the event loop's CPU, shared with GIL-bound workers (cpu_affinity.py)
    trust: Trust | None = None  # serve --trust: versions need valid signatures by these keys
    tls: ServerTls | None = None  # --tls-cert/--tls-key: HTTPS and gRPC over TLS (serve/tls.py)
    # serving.json hook (issue 13): threads/pool_max/batch_size/batch_delay_ms above are the
    # defaults; REPO/NAME/serving.json overrides them per model, and `flags` (what was given on
    # the command line) overrides both
    flags: ServingSettings = field(default_factory=ServingSettings)
    _resolver: SettingsResolver | None = field(default=None, repr=False, compare=False)

    def settings_resolver(self) -> SettingsResolver:
        """One per config: the loader and the index share its cache (and its log-once)."""
        if self._resolver is None:
            defaults = ServingSettings(threads=self.threads, pool_max=self.pool_max,
                                       batch_size=self.batch_size,
                                       batch_delay_ms=self.batch_delay_ms)
            self._resolver = SettingsResolver(defaults, self.flags)
        return self._resolver


def make_loader(cfg: ServeConfig):
    resolver = cfg.settings_resolver()

    def open_version(path: Path) -> Loaded:
        # serving.json hook (issue 13): this model's settings, for the manager (batching) and
        # the metadata endpoint
        resolved = resolver.resolve(path.parent)
        s = resolved.settings
        low, high = s.pool_bounds()
        servable = None
        if cfg.prefer == "plugin":
            if (path / "plugin.so").is_file():
                # plugin hook: checksums, plugin.so.sha256 and the embedded name/version are
                # checked before dlopen; a plugin that fails is not loaded and the version fails
                # to load with that reason (UNAVAILABLE), as a broken package would
                from paddlehot_cli.core.plugin_loader import load_published_plugin
                from paddlehot_cli.plugin.pdcapi import build_pdcapi

                servable = load_published_plugin(path, threads=s.threads, pool_min=low,
                                                 pool_max=high, c_api=build_pdcapi,
                                                 idle_s=s.pool_idle_s)
            else:
                log.warning("%s has no plugin.so: serving the package (--prefer plugin)", path)
        if servable is None:
            servable = load(path, threads=s.threads, pool_min=low, pool_max=high,
                            paddle_options=s.paddle_options(), idle_s=s.pool_idle_s)
        settings = {**resolved.to_json(), "paddle_options_applied": servable.kind != "plugin"}
        return Loaded(servable, Batching(s.batch_size, s.batch_delay_ms, high), settings)

    def loader(path: Path) -> Loaded:
        loaded = open_version(path)
        warn_paddle_skew(loaded.servable.manifest)
        return loaded

    return loader


def warn_paddle_skew(manifest: Any) -> None:
    """Say so when this process's Paddle is older than the one that exported the version
    (warm-up then replays the validation outputs: that decides whether it serves)."""
    from paddlehot_cli.core.paddle_runtime import paddle_version
    from paddlehot_cli.core.paddle_skew import exporter_paddle, older_runtime_warning

    warning = older_runtime_warning(exporter_paddle(manifest), paddle_version())
    if warning:
        log.warning("%s %s: %s", manifest.name, manifest.version, warning)


class Runtime:
    def __init__(self, cfg: ServeConfig, extensions: Sequence[ExtensionFactory] = ()):
        if cfg.prefer not in ("package", "plugin"):
            raise UserError(f"--prefer must be package or plugin, not '{cfg.prefer}'")
        self.cfg = cfg
        self.metrics = Metrics()
        self.listeners = [self.metrics.on_event]  # Manager events: metrics, serve --follow
        self.settings = cfg.settings_resolver()
        try:
            self.loop_cpu = cpu_affinity.choose(cfg.loop_cpu)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        self.state = StateDir(cfg.state_dir) if cfg.state_dir is not None else None
        self.manager = Manager(
            make_loader(cfg),
            ManagerConfig(
                policy=cfg.policy, resource_preserving=cfg.resource_preserving,
                batch_size=cfg.batch_size, batch_delay_ms=cfg.batch_delay_ms,
                pool_max=cfg.pool_max, breaker=dict(cfg.breaker), max_queue=cfg.max_queue,
                gil_cpu=self.loop_cpu,
            ),
            on_event=lambda *event: [listener(*event) for listener in self.listeners],
            quarantine=self.state.quarantine() if self.state is not None else None,
        )
        self.metrics.attach(self.manager)
        self.source = RepositorySource(
            cfg.repo, self.manager.set_available, self.manager.report_invalid,
            on_scan_error=self.manager.report_scan_error,
            check_version=cfg.trust.check_version if cfg.trust is not None else None,
            poll_interval=cfg.poll_interval, use_watchfiles=cfg.use_watchfiles,
        )
        self.manager.rescan = self.source.scan_model
        options = ServeOptions(
            max_body_bytes=int(cfg.max_body_mb * 1024 * 1024),
            limits=ClientLimits(
                max_connections=cfg.max_connections,
                max_connections_per_client=cfg.max_connections_per_client,
                max_buffered_bytes=int(cfg.max_buffered_mb * 1024 * 1024),
                body_timeout_s=cfg.body_timeout_s, head_timeout_s=cfg.head_timeout_s,
                grpc_idle_s=cfg.grpc_idle_s),
            admin_token=cfg.admin_token,
            admin_open=checks.loopback_name(cfg.host),
            platform="paddle_inference",
            repo=cfg.repo,
            on_labels=self.state.save if self.state is not None else None,
        )
        self.server = Server(self.manager, self.metrics, options)
        self.server.index_hooks.append(self._serving_json_rows)  # serving.json hook (issue 13)
        self.grpc: Any = None  # gRPC front end over the same manager, metrics and options
        if cfg.grpc_port is not None:
            try:
                from paddlehot_cli.serve.grpc_server import GrpcFrontEnd
            except ImportError as exc:  # a slim install (an edge rootfs without grpcio)
                raise UserError(f"--grpc-port needs grpcio and tritonclient[grpc]: "
                                f"{exc.name or exc} cannot be imported",
                                hint="pip install grpcio 'tritonclient[grpc]', or serve REST only"
                                ) from None

            self.grpc = GrpcFrontEnd(self.manager, self.metrics, options, rest=self.server)
        self.sock: socket.socket | None = None
        self.uvicorn: Any = None
        self._thread: threading.Thread | None = None
        # e.g. serve --follow: a remote source pulling into REPO; the repository watcher swaps
        self.extensions: list[ServeExtension] = [make(self) for make in extensions]
        for ext in self.extensions:
            self.server.index_hooks.append(ext.index_rows)
            self.listeners.append(ext.on_event)

    def _serving_json_rows(self, rows: list[dict]) -> list[dict]:
        """A malformed REPO/NAME/serving.json shows on that model's rows of the index."""
        errors = {name: self.settings.error(self.cfg.repo / name) for name in {r["name"] for r in rows}}
        out = []
        for row in rows:
            error = errors.get(row["name"])
            if error:
                reason = "; ".join(filter(None, (row.get("reason", ""), "serving.json ignored, "
                                                 "defaults in use")))
                row = {**row, "serving_json_error": error, "reason": reason}
            out.append(row)
        return out

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1] if self.sock else self.cfg.port

    def bind(self) -> None:
        family = socket.AF_INET6 if ":" in self.cfg.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.cfg.host, self.cfg.port))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise UserError(f"port {self.cfg.port} on {self.cfg.host} is already in use",
                                hint="pick another with --port") from None
            raise UserError(f"cannot listen on {self.cfg.host}:{self.cfg.port}: {exc.strerror}") from None
        sock.listen(2048)
        sock.set_inheritable(True)
        self.sock = sock
        if self.grpc is not None:
            try:
                self.grpc.bind(self.cfg.host, self.cfg.grpc_port, self.cfg.tls)
            except UserError:
                sock.close()
                self.sock = None
                raise

    def start_core(self, timeout: float = 300.0) -> None:
        """Scan the repository, load what the policy wants (blocking), then start watching."""
        self.source.check()
        self.server.options.decoder.start()  # before paddle is loaded: a cheap fork
        for ext in self.extensions:
            ext.sync_once()
        try:
            models = self.source.models()
        except ScanFailed as exc:
            raise UserError(f"model repository: {exc}") from None
        if not models:
            if not any(ext.brings_models for ext in self.extensions):
                raise UserError(f"model repository {self.cfg.repo} has no model directories",
                                hint="publish one with `paddlehot export ... --repo REPO`")
            # a new box whose registry is not reachable yet: wait for --follow, not ready
            log.warning("%s has no model yet: waiting for a remote source to bring one "
                        "(/v2/health/ready answers 503 until one is loaded)", self.cfg.repo)
        self.source.scan()
        if self.state is not None:
            for model, labels in self.state.load().items():
                if model in self.manager.models():
                    self.manager.set_labels(model, labels)
        self.manager.wait_idle(timeout)
        self.source.start()
        for ext in self.extensions:
            ext.start()

    def make_uvicorn(self) -> Any:
        import uvicorn

        try:
            import uvloop  # noqa: F401

            loop = "uvloop"
        except ImportError:
            loop = "asyncio"
        http: Any = "h11"
        try:
            import httptools  # noqa: F401
        except ImportError:
            pass
        else:  # our own protocol: infer requests skip ASGI entirely (http_protocol.py)
            from paddlehot_cli.serve.http_protocol import HttpProtocol

            http = functools.partial(HttpProtocol, infer=self.server.rest_infer)
        config = uvicorn.Config(
            self.server.app, loop=loop, http=http, lifespan="off", access_log=False,
            log_level="warning", timeout_graceful_shutdown=self.cfg.graceful_timeout_s,
            server_header=False, date_header=False,
            **({"ssl_certfile": str(self.cfg.tls.cert), "ssl_keyfile": str(self.cfg.tls.key)}
               if self.cfg.tls is not None else {}),
        )
        self.uvicorn = uvicorn.Server(config)
        return self.uvicorn

    def serve_forever(self) -> None:
        """Blocking: serve until SIGTERM/SIGINT, drain, then stop everything."""
        import contextlib
        import signal

        server = self.uvicorn or self.make_uvicorn()

        def on_signal(signum: int, frame: Any) -> None:
            if self.grpc is not None:  # gRPC drains alongside HTTP
                self.grpc.begin_stop(self.cfg.graceful_timeout_s)
            if server.should_exit:  # a second signal: stop waiting for requests
                server.force_exit = True
            server.should_exit = True

        # Our own handlers instead of uvicorn's capture_signals (which re-raises the signal after
        # the drain): a drained shutdown must end in exit code 0.
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            if self.grpc is not None:
                self.grpc.start()
            self._pin_loop()
            server.run(sockets=[self.sock])
        finally:
            self.shutdown()

    def start_in_thread(self) -> None:
        """For tests and benchmarks: serve in a background thread (no signal handlers)."""
        server = self.uvicorn or self.make_uvicorn()
        server.install_signal_handlers = lambda: None  # older uvicorn
        if self.grpc is not None:
            self.grpc.start()
        def run() -> None:
            self._pin_loop()
            server.run(sockets=[self.sock])

        self._thread = threading.Thread(target=run, name="paddlehot-http", daemon=True)
        self._thread.start()
        import time

        while not server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the HTTP server did not start")
            time.sleep(0.01)

    def _pin_loop(self) -> None:
        """The thread about to run the event loop, and the gRPC loop's (started, so that the
        threads grpc starts keep every CPU), go to --loop-cpu (cpu_affinity.py)."""
        if self.grpc is not None and self.grpc.loop_thread_id is not None:
            cpu_affinity.pin_thread(self.grpc.loop_thread_id, self.loop_cpu)
        if cpu_affinity.pin_this_thread(self.loop_cpu):
            log.info("event loops and single-threaded package workers on CPU %d (--loop-cpu)",
                     self.loop_cpu)

    def stop_thread(self) -> None:
        if self.uvicorn is not None:
            self.uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(30)
        self.shutdown()

    def shutdown(self) -> None:
        for ext in self.extensions:
            ext.stop()
        if self.grpc is not None:  # in-flight gRPC calls finish while versions are still loaded
            self.grpc.stop(self.cfg.graceful_timeout_s)
        self.source.stop()
        self.manager.stop()
        self.server.options.decoder.close()
        self.server.options.limits.close()
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
