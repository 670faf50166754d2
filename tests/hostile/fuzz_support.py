"""Shared pieces of the fuzz and truncation tests: the fuzz budget, bounds, execution counts, and a
tiny BERT checkpoint in every file format we read, written without TensorFlow or JAX.

Budget: ``POLYFORMERS_FUZZ_EXAMPLES`` (default 150) examples per fuzz target, each within
``POLYFORMERS_FUZZ_DEADLINE_MS`` (default 5000 ms); ``POLYFORMERS_FUZZ_RANDOM=1`` draws a random
seed instead of CI's fixed one. ``scripts/fuzz_long.sh`` raises the budget.

(A module of its own name rather than conftest.py, which other hostile tests share: test modules
import it as ``from fuzz_support import ...``; conftest.py only registers its fixture and hook.)
"""

from __future__ import annotations

import json
import os
import pathlib
import resource

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

FUZZ_EXAMPLES = int(os.environ.get("POLYFORMERS_FUZZ_EXAMPLES", "150"))
FUZZ_DEADLINE_MS = int(os.environ.get("POLYFORMERS_FUZZ_DEADLINE_MS", "5000"))
# The bound on memory growth while one input is read: a reader that believes a size field and
# allocates it goes far past this (the inputs are a few KiB).
MEMORY_BOUND_BYTES = 512 * 2**20

settings.register_profile(
    "polyformers-fuzz",
    max_examples=FUZZ_EXAMPLES,
    deadline=FUZZ_DEADLINE_MS,
    derandomize=os.environ.get("POLYFORMERS_FUZZ_RANDOM") is None,  # CI is reproducible
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
    print_blob=True,
)
FUZZ = settings.get_profile("polyformers-fuzz")

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "##s", "un", "##able", "a", "é"]
TINY_BERT = dict(
    vocab_size=len(VOCAB), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
    intermediate_size=8, max_position_embeddings=16,
)

# Executions per fuzz target, printed at the end of the session (the issue asks for the figures).
EXECUTIONS: dict[str, dict[str, int]] = {}


def count(target: str, outcome: str) -> None:
    """Record one fuzz execution of ``target``: outcome "ok" (loaded) or "rejected" (typed error)."""
    EXECUTIONS.setdefault(target, {"ok": 0, "rejected": 0})[outcome] += 1


def terminal_summary(terminalreporter) -> None:
    if not EXECUTIONS:
        return
    terminalreporter.write_sep("-", "fuzz executions per target: total (loaded / rejected with a typed error)")
    for target, outcomes in sorted(EXECUTIONS.items()):
        terminalreporter.write_line(f"{target}: {outcomes['ok'] + outcomes['rejected']} ({outcomes['ok']} / {outcomes['rejected']})")


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


class MemoryBound:
    """Fails if the process' peak memory grew by more than ``MEMORY_BOUND_BYTES`` inside the block."""

    def __enter__(self):
        self.start = max_rss_bytes()
        return self

    def __exit__(self, *exc):
        grown = max_rss_bytes() - self.start
        assert grown < MEMORY_BOUND_BYTES, f"peak memory grew by {grown / 2**20:.0f} MiB (bound {MEMORY_BOUND_BYTES / 2**20:.0f} MiB)"
        return False


# --- a tiny BERT in every format, without TensorFlow or JAX ------------------------------------


def _tf_name(pt_name: str) -> str:
    """``encoder.layer.0.attention.self.query.weight`` -> ``tf_bert_model/bert/encoder/layer_._0/.../kernel:0``."""
    parts = pt_name.split(".")
    path: list[str] = []
    for part in parts[:-1]:
        if part.isdigit():
            path[-1] = f"{path[-1]}_._{part}"
        else:
            path.append(part)
    leaf = parts[-1]
    owner = path[-1]
    if owner == "LayerNorm":
        leaf = {"weight": "gamma", "bias": "beta"}[leaf]
    elif owner.endswith("embeddings") and leaf == "weight":
        leaf = "embeddings"
    elif leaf == "weight":
        leaf = "kernel"
    return "/".join(["tf_bert_model", "bert", *path, leaf]) + ":0"


def _flax_path(pt_name: str) -> tuple[str, ...]:
    *path, leaf = pt_name.split(".")
    if path[-1] == "LayerNorm":
        leaf = {"weight": "scale", "bias": "bias"}[leaf]
    elif path[-1].endswith("embeddings") and leaf == "weight":
        leaf = "embedding"
    elif leaf == "weight":
        leaf = "kernel"
    return (*path, leaf)


def _transposed(name: str, array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array.T) if array.ndim == 2 and "embeddings" not in name else array


def write_tiny_checkpoints(root: pathlib.Path) -> dict[str, pathlib.Path]:
    """One directory per artifact kind, each loadable by the matching ``from_pretrained``."""
    import torch
    from safetensors.numpy import save_file as save_numpy

    from polyformers.flax_msgpack import write_flax_msgpack
    from polyformers.tf_h5 import group_by_layer, write_tf_h5
    from polyformers_bert.configuration_bert import BertConfig
    from polyformers_bert.modeling_bert import BertModel
    from polyformers_bert.tokenization_bert_fast import BertTokenizerFast
    from polyformers_wav2vec2.feature_extraction_wav2vec2 import Wav2Vec2FeatureExtractor

    torch.manual_seed(0)
    config = BertConfig(**TINY_BERT)
    model = BertModel(config)
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items() if "position_ids" not in k}
    dirs = {}

    def new(kind: str) -> pathlib.Path:
        path = root / kind
        path.mkdir()
        config.save_pretrained(path)
        dirs[kind] = path
        return path

    model.save_pretrained(new("safetensors"))
    model.save_pretrained(new("sharded"), max_shard_size="2KB")
    model.save_pretrained(new("bin_zip"), safe_serialization=False)
    torch.save(model.state_dict(), new("bin_legacy") / "pytorch_model.bin", _use_new_zipfile_serialization=False)

    tf_weights = {_tf_name(k): _transposed(k, v) for k, v in state.items()}
    write_tf_h5(new("h5") / "tf_model.h5", group_by_layer(tf_weights))
    save_numpy({name.split("/", 1)[1]: a for name, a in tf_weights.items()}, new("safetensors_tf") / "model.safetensors", metadata={"format": "tf"})

    flax_flat = {_flax_path(k): _transposed(k, v) for k, v in state.items()}
    tree: dict = {}
    for path, array in flax_flat.items():
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = array
    write_flax_msgpack(new("msgpack") / "flax_model.msgpack", tree)
    save_numpy({".".join(p): a for p, a in flax_flat.items()}, new("safetensors_flax") / "model.safetensors", metadata={"format": "flax"})

    tokenizer_dir = new("tokenizer")
    (tokenizer_dir / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(tokenizer_dir / "vocab.txt")).save_pretrained(tokenizer_dir)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0).save_pretrained(new("preprocessor"))
    (dirs["preprocessor"] / "config.json").unlink()  # the feature extractor must not need it
    json.loads((tokenizer_dir / "tokenizer.json").read_text())  # written, valid
    return dirs


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict[str, pathlib.Path]:
    return write_tiny_checkpoints(tmp_path_factory.mktemp("tiny_checkpoints"))
