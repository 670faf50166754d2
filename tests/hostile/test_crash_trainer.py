"""Trainer checkpoints survive ``kill -9`` at random moments: the latest ``checkpoint-*`` is always
complete and loadable, resuming from it works, and no half-written folder is taken for one.

A fork server (a child that imports torch and polyformers once) forks one training process per
kill. Each resumes from the latest checkpoint (``resume_from_checkpoint=True``: model weights,
``optimizer.pt`` and ``scheduler.pt`` through ``torch.load(weights_only=True)``, the RNG state),
trains a tiny BERT with a checkpoint at every step (``save_steps=1``, ``save_total_limit=3``, so
rotation deletes folders too) and is killed with SIGKILL after a seeded random delay. After each
kill the latest checkpoint must load completely, and its step may never go back (a checkpoint
that was complete is never lost).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from polyformers import BertForSequenceClassification
from polyformers.trainer_utils import get_last_checkpoint

KILLS = 20
SEED = 20240611

FORK_SERVER = textwrap.dedent(
    """
    import os, sys
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch
    torch.set_num_threads(1)
    from polyformers import BertConfig, BertForSequenceClassification, Trainer, TrainerCallback, TrainingArguments
    from polyformers.trainer_utils import get_last_checkpoint

    out = sys.argv[1]
    rows = [{"input_ids": [2, 5 + i % 3, 6, 3], "attention_mask": [1, 1, 1, 1], "labels": i % 2} for i in range(8)]

    class Announce(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            print("saved", state.global_step, flush=True)

    def train(max_steps):
        torch.manual_seed(0)
        config = BertConfig(vocab_size=10, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16, max_position_embeddings=16, num_labels=2)
        args = TrainingArguments(output_dir=out, max_steps=max_steps, save_steps=1, save_total_limit=3, per_device_train_batch_size=4,
                                 logging_steps=1, report_to=[], learning_rate=1e-3)
        trainer = Trainer(model=BertForSequenceClassification(config), args=args, train_dataset=rows, callbacks=[Announce()])
        resume = get_last_checkpoint(out) is not None if os.path.isdir(out) else False
        print("training", os.getpid(), flush=True)
        trainer.train(resume_from_checkpoint=True if resume else None)

    print("ready", flush=True)
    for line in sys.stdin:
        max_steps = int(line)
        pid = os.fork()
        if pid == 0:
            try:
                train(max_steps)
                code = 0
            except BaseException as exc:
                import traceback
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        print("exited", os.waitstatus_to_exitcode(status), flush=True)
    """
)


def protocol_line(stream, *wanted: str) -> list[str]:
    """The server's next line starting with one of ``wanted`` (it also prints losses and "saved" lines)."""
    for line in stream:
        if line.split()[:1] and line.split()[0] in wanted:
            return line.split()
    return []


def check_complete(checkpoint: str) -> int:
    """Load every part of ``checkpoint`` as resuming would; return its step."""
    names = set(os.listdir(checkpoint))
    for required in ("config.json", "model.safetensors", "optimizer.pt", "scheduler.pt", "trainer_state.json", "rng_state.json"):
        assert required in names, f"{checkpoint} lacks {required}: {sorted(names)}"
    model, info = BertForSequenceClassification.from_pretrained(checkpoint, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    optimizer = torch.load(os.path.join(checkpoint, "optimizer.pt"), weights_only=True)
    assert optimizer["state"] and optimizer["param_groups"]
    torch.load(os.path.join(checkpoint, "scheduler.pt"), weights_only=True)
    json.loads(open(os.path.join(checkpoint, "rng_state.json")).read())
    state = json.loads(open(os.path.join(checkpoint, "trainer_state.json")).read())
    step = int(os.path.basename(checkpoint).split("-")[1])
    assert state["global_step"] == step, f"{checkpoint}: trainer_state.json says step {state['global_step']}"
    return step


@pytest.mark.slow
def test_trainer_killed_at_random_moments_never_loses_a_checkpoint(tmp_path):
    out = str(tmp_path / "run")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    log = open(tmp_path / "server-stderr.txt", "w")
    server = subprocess.Popen([sys.executable, "-c", FORK_SERVER, out], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    rng = random.Random(SEED)
    figures = {"kills": 0, "killed with a temporary checkpoint left": 0, "checkpoints lost": 0}
    latest_step = 0
    try:
        assert protocol_line(server.stdout, "ready") == ["ready"], (tmp_path / "server-stderr.txt").read_text()[-3000:]
        for kill in range(KILLS):
            server.stdin.write("1000000\n")
            server.stdin.flush()
            started = protocol_line(server.stdout, "training")
            assert started[:1] == ["training"], f"kill {kill}: {started}; {(tmp_path / 'server-stderr.txt').read_text()[-3000:]}"
            pid = int(started[1])
            if kill == 0:
                # Time the first run to its first completed save; later runs die anywhere in up to
                # 1.5 times that, at most 2 s (loading, resuming, training steps, saving, rotating).
                start = time.monotonic()
                assert protocol_line(server.stdout, "saved")[:1] == ["saved"]
                window = min(1.5 * (time.monotonic() - start), 2.0)
            time.sleep(rng.uniform(0.0, window))
            os.kill(pid, signal.SIGKILL)
            exited = protocol_line(server.stdout, "exited")
            assert exited == ["exited", str(-signal.SIGKILL)], f"kill {kill}: the training process ended on its own: {exited}; {(tmp_path / 'server-stderr.txt').read_text()[-3000:]}"
            figures["kills"] += 1

            names = os.listdir(out) if os.path.isdir(out) else []
            figures["killed with a temporary checkpoint left"] += any(n.startswith("tmp-checkpoint-") for n in names)
            assert all(n.startswith(("checkpoint-", "tmp-checkpoint-")) for n in names), f"kill {kill}: unexpected entries {names}"
            last = get_last_checkpoint(out) if names else None
            if last is None:
                assert latest_step == 0, f"kill {kill}: checkpoint-{latest_step} was lost"
                continue
            step = check_complete(last)
            if step < latest_step:
                figures["checkpoints lost"] += 1
            assert step >= latest_step, f"kill {kill}: the latest checkpoint went back from {latest_step} to {step}"
            latest_step = step

        # A last run resumes from the latest checkpoint and finishes normally.
        server.stdin.write(f"{latest_step + 2}\n")
        server.stdin.flush()
        assert protocol_line(server.stdout, "training")[:1] == ["training"]
        assert protocol_line(server.stdout, "exited") == ["exited", "0"], (tmp_path / "server-stderr.txt").read_text()[-3000:]
        assert check_complete(get_last_checkpoint(out)) == latest_step + 2
    finally:
        server.stdin.close()
        try:
            server.wait(timeout=30)
        finally:
            if server.poll() is None:
                server.kill()
            log.close()
    print(f"trainer crash figures: {figures}, latest step {latest_step}, kill window {window:.2f} s")
    assert figures["kills"] == KILLS and figures["checkpoints lost"] == 0
    assert latest_step > 0, "no checkpoint was ever completed: the kill delays are too short"
