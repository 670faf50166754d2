"""The README's worked plugin example (examples/tiny-mlp-plugin) installs and works as documented."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

EXAMPLE = pathlib.Path(__file__).parents[1] / "examples" / "tiny-mlp-plugin"

USE_IT = """
import json, sys, torch
import polyformers
from polyformers import AutoModel, TinyMlpConfig
from polyformers.testing.conformance import check_plugin
assert check_plugin("tiny-mlp-plugin") == [], check_plugin("tiny-mlp-plugin")
model = AutoModel.from_config(TinyMlpConfig(hidden_size=8))
model.save_pretrained(sys.argv[1])
loaded = AutoModel.from_pretrained(sys.argv[1])
x = torch.randn(2, 8)
assert torch.equal(model(x), loaded(x))
assert type(loaded) is polyformers.TinyMlpModel
print(json.dumps([p.distribution for p in polyformers.plugins.list_plugins()]))
"""


@pytest.mark.slow
def test_third_party_plugin_example(tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target), str(EXAMPLE)],
        check=True,
        capture_output=True,
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", USE_IT, str(tmp_path / "ckpt")], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "tiny-mlp-plugin" in out.stdout
