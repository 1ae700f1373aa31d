"""Mosec serving the same paddle predictor (benchmark comparison only; mosec is not a dependency).

  python paddlehot_cli/bench/mosec_mlp.py --package REPO/mlp/1.0.0 --port 8001
  wrk -t2 -c8 -d15s --latency -s paddlehot_cli/bench/wrk_infer.lua http://127.0.0.1:8001/inference
  paddlehot_cli/bench/wrk_ab.sh 3 10 paddlehot=PID@URL mosec=PIDS@URL   (interleaved rounds)
It accepts the same OIP v2 JSON body as paddlehot (so the same wrk script drives both).
"""

import os
import sys

import numpy as np
from mosec import Server, Worker

PACKAGE = os.environ.get("PH_PACKAGE", "")


class Infer(Worker):
    def __init__(self) -> None:
        super().__init__()
        from paddlehot_cli.core import load

        self.model = load(PACKAGE, threads=1)
        self.out_name = self.model.output_names[0]

    def forward(self, data: dict) -> dict:
        item = data["inputs"][0]
        x = np.asarray(item["data"], dtype=np.float32).reshape(item["shape"])
        y = self.model.infer({item["name"]: x})[self.out_name]
        return {"outputs": [{"name": self.out_name, "datatype": "FP32", "shape": list(y.shape),
                             "data": y.ravel().tolist()}]}


if __name__ == "__main__":
    if "--package" in sys.argv:
        i = sys.argv.index("--package")
        os.environ["PH_PACKAGE"] = PACKAGE = sys.argv[i + 1]
        del sys.argv[i:i + 2]
    server = Server()
    server.append_worker(Infer, num=1, env=[{"PH_PACKAGE": PACKAGE}])
    server.run()
