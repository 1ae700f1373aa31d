"""Write OIP v2 infer bodies for wrk (bench/wrk_body.lua): one batch-1 request with seeded
random inputs for a package, as JSON and as Triton binary tensors.

  python -m paddlehot_cli.bench.wrk_bodies REPO/NAME/VERSION OUTDIR
  -> OUTDIR/NAME.json, OUTDIR/NAME.bin and OUTDIR/NAME.bin.hlen (its header length)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from paddlehot_cli.core.manifest import read_manifest
from paddlehot_cli.serve import protocol


def bodies(package: Path) -> tuple[bytes, bytes, int]:
    """(JSON body, binary body, binary header length) for one batch-1 request."""
    rng = np.random.default_rng(0)
    json_inputs, bin_inputs, blobs = [], [], []
    for spec in read_manifest(package).inputs:
        shape = [1 if d < 0 else d for d in spec.shape]
        arr = rng.standard_normal(shape).astype(spec.dtype) if spec.dtype.startswith("float") \
            else rng.integers(0, 10, shape).astype(spec.dtype)
        item = {"name": spec.name, "datatype": protocol.datatype_of(spec.dtype), "shape": shape}
        json_inputs.append({**item, "data": arr.ravel().tolist()})
        bin_inputs.append({**item, "parameters": {"binary_data_size": arr.nbytes}})
        blobs.append(arr.astype(arr.dtype.newbyteorder("<")).tobytes())
    header = protocol.dumps({"inputs": bin_inputs,
                             "parameters": {"binary_data_output": True}})
    return protocol.dumps({"inputs": json_inputs}), header + b"".join(blobs), len(header)


def main(argv: list[str]) -> None:
    package, out = Path(argv[0]), Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    name = read_manifest(package).name
    as_json, as_binary, hlen = bodies(package)
    (out / f"{name}.json").write_bytes(as_json)
    (out / f"{name}.bin").write_bytes(as_binary)
    (out / f"{name}.bin.hlen").write_text(str(hlen))
    print(f"{out}/{name}.json ({len(as_json)} bytes), {out}/{name}.bin ({len(as_binary)} bytes, "
          f"header {hlen})")


if __name__ == "__main__":
    main(sys.argv[1:])
