"""Export of user files as a newcomer writes them: a model file importing its neighbour, and a
model the legacy program format cannot trace (the error says to use --model-format pir)."""

from __future__ import annotations

import os
import textwrap

from tests.conftest import assert_one_line_error, cli

GELU = textwrap.dedent("""
    from paddle import nn


    class Net(nn.Layer):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return nn.functional.gelu(self.fc(x))
    """)


def _env_without(path) -> dict:
    """PYTHONPATH as the tests run, minus the model's directory (it must not need it)."""
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
             if p and os.path.abspath(p) != str(path)]
    return {"PYTHONPATH": os.pathsep.join(parts)}


def test_model_file_imports_its_neighbour(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "blocks.py").write_text(GELU.replace("class Net", "class Block"))
    (models / "my_model.py").write_text(textwrap.dedent("""
        from blocks import Block


        class Net(Block):
            pass
        """))
    work = tmp_path / "elsewhere"  # run from another directory: only the file's own dir helps
    work.mkdir()
    proc = cli("export", models / "my_model.py:Net", "--input", "x:float32:[-1,4]", "-o",
               work / "pkg", cwd=work, env=_env_without(models))
    assert proc.returncode == 0, proc.stderr
    assert (work / "pkg" / "paddlehot.json").is_file()


def test_legacy_format_failure_suggests_pir(tmp_path):
    (tmp_path / "gelu_model.py").write_text(GELU)
    proc = cli("export", "gelu_model.py:Net", "--input", "x:float32:[-1,4]", "--model-format", "legacy",
               "-o", tmp_path / "out", cwd=tmp_path)
    assert_one_line_error(proc, 2, "legacy program format could not trace this model",
                          "--model-format pir")
    assert not (tmp_path / "out").exists()
