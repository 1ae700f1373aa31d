"""`paddlehot serve [REPO]`: serve a model repository over the Open Inference Protocol v2."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import typer

from paddlehot_cli.cli.errors import user_errors
from paddlehot_cli.cli.render import console, out


def _demo_repo(repo: Path) -> Path:
    """Export the built-in demo MLP into a temp repository (no REPO given; serve removes it)."""
    from paddlehot_cli.export.pipeline import ExportRequest, export_package

    export_package(ExportRequest(source="demo:mlp", inputs=[], name=None, version="1.0.0",
                                 fmt="pir", out_dir=None, repo=repo, force=False, validate=False,
                                 atol=1e-4, rtol=1e-3, seed=0, weights=None, sizes=[1, 3, 8]))
    return repo


def _check_pool_flags(pool_min: int | None, pool_max: int | None, idle_s: float | None,
                      budget: str | None) -> None:
    """--pool-min/--pool-max/--pool-idle-s/--memory-budget: refuse nonsense, set the budget."""
    from paddlehot_cli.core import memory_budget
    from paddlehot_cli.errors import UserError

    if pool_min is not None and pool_min < 0:
        raise UserError("--pool-min must be 0 or more")
    if pool_min is not None and pool_max is not None and pool_min > pool_max:
        raise UserError(f"--pool-min {pool_min} is above --pool-max {pool_max}")
    if idle_s is not None and not 0 < idle_s <= 86_400:
        raise UserError("--pool-idle-s must be seconds in (0, 86400]")
    if budget is not None:
        memory_budget.configure(memory_budget.parse_size(budget))


def _say(text: str) -> None:
    out.print(text, soft_wrap=True, highlight=False)


@user_errors
def serve(
    repo: Path | None = typer.Argument(
        None, help="Model repository REPO/NAME/VERSION/ (default: the built-in demo model)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="TCP port (0 picks a free one)."),
    grpc_port: int | None = typer.Option(
        None, "--grpc-port",
        help="Also serve KServe v2 / Triton gRPC on this port, same host (0 picks a free one). "
        "Off by default.",
    ),
    threads: int | None = typer.Option(
        None, "--threads", help="Intra-op threads per predictor [default: 1, or serving.json]."),
    poll_interval: float = typer.Option(
        2.0, "--poll-interval", help="Seconds between repository polls (fallback for file events)."
    ),
    prefer: str = typer.Option("package", "--prefer", metavar="package|plugin",
                               help="Serve the package, or VERSION/plugin.so where present."),
    admin_token: str | None = typer.Option(
        None, "--admin-token", metavar="TOKEN", envvar="PADDLEHOT_ADMIN_TOKEN",
        help="Bearer token for load/unload/labels; required for them when --host is not loopback.",
    ),
    max_versions: int = typer.Option(1, "--max-versions", help="Serve the latest N versions."),
    versions: list[str] | None = typer.Option(
        None, "--version-pin", metavar="VERSION", help="Serve exactly these versions (repeatable) instead of the latest N."
    ),
    keep_previous: bool = typer.Option(
        True, "--keep-previous/--no-keep-previous",
        help="Keep the previous version warm for instant rollback when the newest breaker opens.",
    ),
    resource_preserving: bool = typer.Option(
        False, "--resource-preserving",
        help="Unload the old version before loading the new one (less memory; downtime during swaps).",
    ),
    batch_size: int | None = typer.Option(
        None, "--batch-size", help="Dynamic batching: max batch (1 = off) [default: 1, or serving.json]."),
    batch_delay_ms: float | None = typer.Option(
        None, "--batch-delay-ms", help="Dynamic batching: max queue delay [default: 0, or serving.json]."),
    pool_max: int | None = typer.Option(
        None, "--pool-max", help="Predictors (and worker threads) per version [default: 1, or serving.json]."),
    pool_min: int | None = typer.Option(
        None, "--pool-min",
        help="Predictors each version keeps however idle; more are grown in the background "
             "up to --pool-max [default: 1, or serving.json]."),
    pool_idle_s: float | None = typer.Option(
        None, "--pool-idle-s", metavar="SECONDS",
        help="A predictor above --pool-min idle this long is released and its memory returned "
             "[default: 30, or serving.json]."),
    memory_budget: str | None = typer.Option(
        None, "--memory-budget", metavar="SIZE",
        help="Memory (resident set) the whole server may use, e.g. 1.5G: loads and pool growth "
             "are admitted within it, a load first shrinks idle pools [default: no limit]."),
    # serving.json hook (issue 13): Paddle CPU options; given flags override REPO/NAME/serving.json
    onednn: bool | None = typer.Option(
        None, "--onednn/--no-onednn", help="oneDNN kernels [default: on where the wheel has them, or serving.json]."),
    ir_optim: bool | None = typer.Option(
        None, "--ir-optim/--no-ir-optim", help="Paddle IR optimisation [default: on, or serving.json]."),
    memory_optim: bool | None = typer.Option(
        None, "--memory-optim/--no-memory-optim", help="Paddle memory optimisation [default: off, or serving.json]."),
    onednn_cache_capacity: int | None = typer.Option(
        None, "--onednn-cache-capacity",
        help="Paddle's oneDNN cache of input shapes for package versions, in shapes; 0 = off "
             "(Paddle's own default is 10). Above 0 Paddle checks its kernel cache after every "
             "run without a lock: do not mix it with plugin versions in one serve "
             "[default: 0, or serving.json]."),
    loop_cpu: str = typer.Option(
        "auto", "--loop-cpu", metavar="auto|off|N",
        help="CPU for the event loop and the workers of package versions with one intra-op "
             "thread: they take turns on Python's GIL, and on one CPU each hand-over is cheap. "
             "auto: the last CPU when 2 or more are allowed; off: the kernel decides."),
    max_body_mb: float = typer.Option(
        64.0, "--max-body-mb", help="Larger request bodies get 413 (every endpoint)."),
    max_connections: int = typer.Option(
        512, "--max-connections", help="Open HTTP connections in total; more get 503."),
    max_connections_per_client: int = typer.Option(
        64, "--max-connections-per-client",
        help="Open HTTP connections from one source address; more get 503."),
    max_buffered_mb: float = typer.Option(
        256.0, "--max-buffered-mb",
        help="Request bodies held in memory at once, all connections together; beyond it a "
             "request gets 503 + Retry-After."),
    body_timeout: float = typer.Option(
        30.0, "--body-timeout", metavar="SECONDS",
        help="A request's body must arrive within this after its head (408 and close)."),
    max_queue: int = typer.Option(
        0, "--max-queue",
        help="Requests waiting per version beyond those running; more get 503 + Retry-After "
             "(0: 32 x --pool-max x --batch-size).",
    ),
    state_dir: Path | None = typer.Option(
        None, "--state-dir",
        help="Keep admin label/canary changes here (atomic writes) so they survive restarts; "
             "the repository may be read-only. Also records the version being loaded: one that "
             "kills the process is quarantined at the next start (no crash loop).",
    ),
    breaker_failures: int = typer.Option(5, "--breaker-failures", help="Consecutive failures that open a breaker."),
    breaker_cooldown: float = typer.Option(
        30.0, "--breaker-cooldown",
        help="Seconds an open breaker waits before one trial request; its success undoes the rollback."),
    follow: list[str] | None = typer.Option(
        None, "--follow", metavar="[MODEL=]oci://HOST/NS/NAME[:LABEL|@RANGE]",
        help="Pull new versions of this registry repository into REPO as they are pushed (the "
             "newest --max-versions, those in a SemVer range, or the one a label points at). "
             "Only a package named NAME is installed (MODEL=oci://... installs MODEL from "
             "there instead). Repeatable. See `paddlehot pull`.",
    ),
    follow_interval: float = typer.Option(30.0, "--follow-interval",
                                          help="Seconds between registry checks (backs off on errors)."),
    insecure: bool = typer.Option(False, "--insecure",
                                  help="--follow over plain HTTP instead of TLS (a test registry)."),
    trust: list[Path] | None = typer.Option(
        None, "--trust", metavar="KEY.pub",
        help="Serve only versions whose paddlehot.json (and plugin.so) carry a valid signature "
             "by one of these public keys (repeatable: key rotation). See `paddlehot sign`."),
    tls_cert: Path | None = typer.Option(
        None, "--tls-cert", metavar="CERT.pem",
        help="Serve HTTPS (and gRPC over TLS) with this certificate chain (PEM); needs --tls-key."),
    tls_key: Path | None = typer.Option(None, "--tls-key", metavar="KEY.pem",
                                        help="The private key of --tls-cert (PEM, unencrypted)."),
    registry_ca: Path | None = typer.Option(
        None, "--registry-ca", metavar="CA.pem",
        help="--follow: trust registries whose certificate this CA bundle signed (PEM)."),
) -> None:
    """Serve every model in REPO with zero-downtime hot swaps (Open Inference Protocol v2).

    New versions published into REPO are loaded, warmed with their validation inputs and swapped
    in; the old version is released when its last request is done. SIGTERM drains in-flight
    requests and exits 0.

    Per-model settings come from REPO/NAME/serving.json (`paddlehot bench REPO:NAME --tune
    --write` writes it); a flag given here overrides it for every model.

    Examples:

      paddlehot serve models/ --port 8000 --threads 2

      paddlehot serve models/ --host 0.0.0.0 --admin-token "$TOKEN" --max-versions 2

      paddlehot serve models/ --follow oci://registry.local:5000/models/mlp:stable

      paddlehot serve models/ --grpc-port 8001
    """
    from paddlehot_cli.core.serving_settings import ServingSettings
    from paddlehot_cli.core.version_policy import VersionPolicy
    from paddlehot_cli.errors import UserError
    from paddlehot_cli.serve.runtime import Runtime, ServeConfig

    for name, value in (("--threads", threads), ("--batch-size", batch_size), ("--pool-max", pool_max)):
        if value is not None and value < 1:
            raise UserError(f"{name} must be at least 1")
    if not 0 <= port <= 65535:
        raise UserError(f"--port {port} is not a TCP port")
    if max_queue < 0:
        raise UserError("--max-queue must be 0 (automatic) or more")
    if grpc_port is not None and not 0 <= grpc_port <= 65535:
        raise UserError(f"--grpc-port {grpc_port} is not a TCP port")
    if poll_interval <= 0 or (batch_delay_ms or 0) < 0 or max_body_mb <= 0:
        raise UserError("--poll-interval and --max-body-mb must be positive, --batch-delay-ms >= 0")
    if min(max_connections, max_connections_per_client) < 1 or max_buffered_mb <= 0 \
            or body_timeout <= 0:
        raise UserError("--max-connections, --max-connections-per-client, --max-buffered-mb "
                        "and --body-timeout must be positive")
    if onednn_cache_capacity is not None and onednn_cache_capacity < 0:
        raise UserError("--onednn-cache-capacity must be >= 0 (0 = unbounded)")
    _check_pool_flags(pool_min, pool_max, pool_idle_s, memory_budget)
    flags = ServingSettings(threads=threads, pool_min=pool_min, pool_max=pool_max,
                            pool_idle_s=pool_idle_s, batch_size=batch_size,
                            batch_delay_ms=batch_delay_ms, onednn=onednn, ir_optim=ir_optim,
                            memory_optim=memory_optim, onednn_cache_capacity=onednn_cache_capacity)
    if repo is not None and not repo.is_dir():
        raise UserError(f"model repository {repo} is not a directory")
    from paddlehot_cli.serve.tls import server_tls

    tls = server_tls(tls_cert, tls_key)
    extensions = []  # serve knows fleet only as an extension (serve/extensions.py)
    if follow:
        from paddlehot_cli.fleet.client import trust_registry_ca
        from paddlehot_cli.fleet.follower import follower_for

        trust_registry_ca(registry_ca)
        if repo is None or follow_interval <= 0:
            raise UserError("--follow needs a REPO to pull into and a positive --follow-interval")
        extensions.append(follower_for(list(follow), follow_interval, insecure))
    # OpenMP threads that spin 200 ms after each op (Intel's default) steal the cores a model
    # load needs during a swap: resnet18 at 2 threads, p99 in swap windows 2.1x -> 1.6x steady
    # for ~7% less steady throughput. Must be set before paddle (libiomp5) is loaded.
    os.environ.setdefault("KMP_BLOCKTIME", "0")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    cfg = ServeConfig(
        repo=repo or Path("."), host=host, port=port, poll_interval=poll_interval,
        prefer=prefer, admin_token=admin_token,
        policy=VersionPolicy(latest=max_versions, versions=tuple(versions) if versions else None,
                             keep_previous=keep_previous),
        resource_preserving=resource_preserving, max_body_mb=max_body_mb,
        max_connections=max_connections, max_connections_per_client=max_connections_per_client,
        max_buffered_mb=max_buffered_mb, body_timeout_s=body_timeout,
        breaker={"failures": breaker_failures, "cooldown_s": breaker_cooldown},
        max_queue=max_queue, state_dir=state_dir, flags=flags,
        grpc_port=grpc_port, loop_cpu=loop_cpu, tls=tls,
    )
    if trust:  # signatures (core/signatures.py): cryptography is imported only here
        from paddlehot_cli.core.signatures import Trust

        cfg.trust = Trust.from_files(list(trust))
    # no REPO: a temp repository with the demo model, removed however serve ends (SIGTERM too)
    demo = Path(tempfile.mkdtemp(prefix="paddlehot-demo-repo-")) if repo is None else None
    try:
        def _early_stop(*_: object) -> None:
            raise KeyboardInterrupt  # SIGTERM while starting: stop loading, exit

        signal.signal(signal.SIGTERM, _early_stop)
        runtime = Runtime(cfg, extensions) if repo is not None else None
        if runtime is not None:
            runtime.bind()  # fail fast (port in use) before loading anything
        else:
            console.print("no REPO given: serving the built-in demo model")
            cfg.repo = _demo_repo(demo)
            runtime = Runtime(cfg)
            runtime.bind()
        try:
            runtime.start_core()
        except KeyboardInterrupt:
            runtime.shutdown()
            console.print("stopped before serving")
            return
        except BaseException:
            runtime.shutdown()
            raise
        url = f"{'https' if tls else 'http'}://{host if ':' not in host else f'[{host}]'}:{runtime.port}"
        _say(f"[bold]paddlehot serve[/bold] {cfg.repo} on {url} (policy: {cfg.policy.describe()})")
        for model in runtime.manager.models():
            loaded = runtime.manager.loaded_versions(model)
            _say(f"  {model}: {', '.join(loaded) if loaded else '[red]no version loaded[/red]'}")
            _say(f"    POST {url}/v2/models/{model}/infer")
        if runtime.grpc is not None:
            _say(f"  gRPC{' over TLS' if tls else ''} (KServe v2 / Triton GRPCInferenceService): "
                 f"{host if ':' not in host else f'[{host}]'}:{runtime.grpc.port}")
        _say(f"  health: {url}/v2/health/live  {url}/v2/health/ready   metrics: {url}/metrics")
        _say(f"  repository: POST {url}/v2/repository/index | models/NAME/load | unload"
                  + ("" if runtime.server.options.admin_open or admin_token else "  [yellow](disabled: no --admin-token)[/yellow]"))
        sys.stdout.flush()
        runtime.serve_forever()
    finally:
        if demo is not None:
            shutil.rmtree(demo, ignore_errors=True)
    console.print("drained and stopped")
