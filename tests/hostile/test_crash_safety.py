"""A save killed at any instant leaves a directory that loads as one complete generation.

A child process saves a tiny BERT over and over, each generation with different weights, and is
killed with SIGKILL after a seeded random delay. After each kill the directory must still load,
every parameter from the same saved generation, and no temporary file may be taken for weights.
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

from polyformers_bert.configuration_bert import BertConfig
from polyformers_bert.modeling_bert import BertModel

KILLS = 20
CONFIG = dict(vocab_size=12, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8, max_position_embeddings=32)

# Generation g fills parameter i with g + i / 1000, so one value tells the generation and the
# rest show whether every tensor came from it.
CHILD = textwrap.dedent(
    """
    import sys, torch
    from polyformers_bert.configuration_bert import BertConfig
    from polyformers_bert.modeling_bert import BertModel

    directory, first_generation, config = sys.argv[1], int(sys.argv[2]), eval(sys.argv[3])
    model = BertModel(BertConfig(**config))
    print("ready", flush=True)
    sys.stdin.readline()  # wait for "go", so the parent's timer starts once saving starts
    generation = first_generation
    with torch.no_grad():
        while True:
            for i, p in enumerate(model.parameters()):
                p.fill_(generation + i / 1000)
            model.save_pretrained(directory)
            generation += 1
    """
)


def fill_generation(model: BertModel, generation: int) -> None:
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.fill_(generation + i / 1000)


def loaded_generation(directory) -> int:
    """Load the directory and return the one generation all its parameters come from."""
    model, info = BertModel.from_pretrained(directory, output_loading_info=True)
    missing = info["missing_keys"] if isinstance(info, dict) else info.missing_keys
    unexpected = info["unexpected_keys"] if isinstance(info, dict) else info.unexpected_keys
    assert not missing and not unexpected, f"missing {missing}, unexpected {unexpected}"
    params = list(model.parameters())
    generation = round(params[0].flatten()[0].item())
    for i, p in enumerate(params):
        torch.testing.assert_close(p, torch.full_like(p, generation + i / 1000), msg=f"parameter {i} is not from generation {generation}")
    return generation


def spawn(directory, first_generation: int) -> subprocess.Popen:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(directory), str(first_generation), repr(CONFIG)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    return child


@pytest.mark.slow
def test_save_killed_at_random_moments_leaves_a_loadable_generation(tmp_path):
    directory = tmp_path / "checkpoint"
    model = BertModel(BertConfig(**CONFIG))
    fill_generation(model, 0)
    model.save_pretrained(directory)  # a complete earlier checkpoint exists before the first kill
    assert loaded_generation(directory) == 0

    rng = random.Random(1234)
    delays = [rng.uniform(0.05, 0.5) for _ in range(KILLS)]
    latest = 0
    # Start each child while the previous one runs, so its imports overlap the previous wait.
    next_child = spawn(directory, 1000)
    for kill in range(KILLS):
        child = next_child
        try:
            assert child.stdout.readline().strip() == "ready", "the saving child failed to start"
            next_child = spawn(directory, (kill + 2) * 1000) if kill + 1 < KILLS else None
            child.stdin.write("go\n")
            child.stdin.flush()
            time.sleep(delays[kill])
            assert child.poll() is None, f"the saving child died on its own (exit code {child.returncode})"
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        assert child.returncode == -signal.SIGKILL

        generation = loaded_generation(directory)
        assert generation == latest or generation >= (kill + 1) * 1000, (
            f"kill {kill} after {delays[kill]:.2f} s: loaded generation {generation}, older than the last one seen ({latest})"
        )
        latest = generation

        names = sorted(os.listdir(directory))
        weights = [n for n in names if not n.startswith(".") and n.endswith((".safetensors", ".bin", ".index.json"))]
        assert weights == ["model.safetensors"], f"kill {kill}: weight files {weights} in {names}"
        assert json.loads((directory / "config.json").read_text())["model_type"] == "bert"
        leftovers = [n for n in names if n not in ("config.json", "model.safetensors")]
        # Killed writes leave hidden temporary files: ours (".<name>.<random>.tmp") and those of
        # safetensors' Rust writer (".tmp<random>"). Hidden, never matched as weights (checked above).
        assert all(n.startswith(".") for n in leftovers), f"unexpected files after kill {kill}: {leftovers}"
    assert latest > 0, "no kill happened after a new generation was saved; the delays are too short"
