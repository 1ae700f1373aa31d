"""What `serve --trust` adds to a version's load: verifying its signatures (docs/signing.md).

    python -m paddlehot_cli.bench.signature_cost REPO:NAME@VERSION [...] [--rounds 50]

Each version is signed with a throw-away key in a temporary copy (its files and plugin.so).
Figures per version, in milliseconds (medians):
  startup_ms      in a fresh process that has the manifest modules loaded (as serve has): import
                  the signature module and `cryptography`, read the trusted key; serve --trust
                  pays it once, at start-up, before any version loads
  first_check_ms  the first verification in that process (what the first version's load pays)
  warm_ms         the same verification in a warm process (every later version's load)
  checksums  what every load already does without --trust: read paddlehot.json and hash every
             file it lists (core.manifest.read_verified), median, for comparison
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_COLD = """
import sys, time
import paddlehot_cli.core.manifest, paddlehot_cli.core.plugin_image  # a serve has them loaded
t0 = time.perf_counter()
from paddlehot_cli.core.signatures import Trust
trust = Trust.from_files([sys.argv[1]])  # serve --trust: at start-up, before any version
t1 = time.perf_counter()
why = trust.check_version(sys.argv[2], sys.argv[3], sys.argv[4])
t2 = time.perf_counter()
print((t1 - t0) * 1000, (t2 - t1) * 1000, why)
"""


def _copy(vdir: Path, work: Path) -> Path:
    dest = work / vdir.parent.name / vdir.name
    shutil.copytree(vdir, dest, ignore=shutil.ignore_patterns("signatures"))
    return dest


def _median_ms(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def measure(spec: str, work: Path, rounds: int) -> dict:
    from paddlehot_cli.core.manifest import read_verified
    from paddlehot_cli.core.repository import resolve_version
    from paddlehot_cli.core.signatures import Trust, sign_version
    from paddlehot_cli.core.signing_keys import generate_key

    vdir = _copy(resolve_version(spec), work)
    key = work / f"key-{vdir.parent.name}-{vdir.name}"
    generate_key(key)
    sign_version(vdir, key)
    manifest = read_verified(vdir)
    pub = f"{key}.pub"
    startup, first = [], []
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", _COLD, pub, str(vdir), manifest.name,
                              manifest.version], capture_output=True, text=True, check=True)
        start_ms, first_ms, why = out.stdout.split(" ", 2)
        if why.strip() != "None":
            raise RuntimeError(f"{spec}: {why}")
        startup.append(float(start_ms))
        first.append(float(first_ms))
    trust = Trust.from_files([Path(pub)])
    warm = _median_ms(lambda: trust.check_version(vdir, manifest.name, manifest.version), rounds)
    sums = _median_ms(lambda: read_verified(vdir), rounds)
    plugin = vdir / "plugin.so"
    return {"version": spec, "files_bytes": sum(i["bytes"] for i in manifest.files.values()),
            "plugin_bytes": plugin.stat().st_size if plugin.is_file() else 0,
            "startup_ms": round(statistics.median(startup), 2),
            "first_check_ms": round(statistics.median(first), 2), "warm_ms": round(warm, 3),
            "checksums_ms": round(sums, 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m paddlehot_cli.bench.signature_cost",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("versions", nargs="+", metavar="REPO:NAME@VERSION")
    ap.add_argument("--rounds", type=int, default=50)
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="paddlehot-sigcost-"))
    try:
        rows = [measure(spec, work, args.rounds) for spec in args.versions]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
