"""BERT-base forward throughput in all three frameworks, polyformers next to Transformers 4.46.3.

    python bench/bench_frameworks.py [--quick] [--layers N] [--json PATH]

Run it in the environment with Transformers 4.46.3 (the last with TensorFlow and Flax models),
TensorFlow with tf-keras, JAX/Flax and PyTorch: `scripts/test-all.sh` builds it as the cached
'oracle-v4' environment. One checkpoint (random BERT-base weights, saved by our PyTorch model)
is loaded by every model; each pair (ours, theirs) is timed interleaved in one process, and the
table gives medians and ratios (ours / theirs: below 1 is faster). Inputs: batch 8 x 128 tokens.
TensorFlow runs under ``tf.function`` with XLA off and on; Flax under ``jax.jit``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from typing import Callable

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # Transformers' TF models need Keras 2 (tf-keras)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402


def timed_pair(ours: Callable[[], object], theirs: Callable[[], object], repeats: int, block: Callable[[object], object]) -> tuple[float, float]:
    for _ in range(2):  # warm up, compile
        block(ours())
        block(theirs())
    a, b = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        block(ours())
        a.append(time.perf_counter() - start)
        start = time.perf_counter()
        block(theirs())
        b.append(time.perf_counter() - start)
    return statistics.median(a) * 1e3, statistics.median(b) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--json")
    args = parser.parse_args()
    repeats = 3 if args.quick else 10

    import torch
    import transformers

    import polyformers

    rows: dict[str, tuple[float, float]] = {}
    ids = np.random.default_rng(0).integers(0, 30000, (8, 128)).astype(np.int32)
    with tempfile.TemporaryDirectory() as d:
        torch.manual_seed(0)
        polyformers.BertModel(polyformers.BertConfig(num_hidden_layers=args.layers)).save_pretrained(d)

        ours_pt = polyformers.BertModel.from_pretrained(d)
        theirs_pt = transformers.BertModel.from_pretrained(d).eval()
        x = torch.from_numpy(ids.astype(np.int64))
        with torch.inference_mode():
            rows["PyTorch eager"] = timed_pair(lambda: ours_pt(x).last_hidden_state, lambda: theirs_pt(x).last_hidden_state, repeats, lambda t: t)
            reference = ours_pt(x).last_hidden_state.numpy()

        import tensorflow as tf

        ours_tf = polyformers.TFBertModel.from_pretrained(d, from_pt=True)
        theirs_tf = transformers.TFBertModel.from_pretrained(d, from_pt=True)
        tx = tf.constant(ids)
        for xla in (False, True):
            f_ours = tf.function(lambda t: ours_tf(t).last_hidden_state, jit_compile=xla)
            f_theirs = tf.function(lambda t: theirs_tf(t).last_hidden_state, jit_compile=xla)
            rows[f"TensorFlow tf.function, XLA {'on' if xla else 'off'}"] = timed_pair(lambda: f_ours(tx), lambda: f_theirs(tx), repeats, lambda t: t.numpy())
        tf_diff = float(np.abs(f_ours(tx).numpy() - reference).max())

        import jax

        ours_fx = polyformers.FlaxBertModel.from_pretrained(d, from_pt=True)
        theirs_fx = transformers.FlaxBertModel.from_pretrained(d, from_pt=True)
        jx = jax.numpy.asarray(ids)
        rows["Flax jax.jit"] = timed_pair(lambda: ours_fx(jx).last_hidden_state, lambda: theirs_fx(jx).last_hidden_state, repeats, lambda t: t.block_until_ready())
        flax_diff = float(np.abs(np.asarray(ours_fx(jx).last_hidden_state) - reference).max())

    print(f"BERT-base ({args.layers} layers) forward, batch 8 x 128, medians of {repeats}; torch {torch.__version__}, "
          f"tensorflow {tf.__version__}, jax {jax.__version__}, transformers {transformers.__version__}")
    print(f"{'':40s} {'polyformers ms':>15s} {'transformers ms':>16s} {'ratio':>7s}")
    for name, (a, b) in rows.items():
        print(f"{name:40s} {a:15.1f} {b:16.1f} {a / b:6.2f}x")
    pt_ms = rows["PyTorch eager"][0]
    print("ours vs our PyTorch: " + ", ".join(f"{name} {a / pt_ms:.2f}x" for name, (a, _) in rows.items() if name != "PyTorch eager"))
    print(f"max |last_hidden_state - our PyTorch|: TensorFlow {tf_diff:.1e}, Flax {flax_diff:.1e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows_ms": rows, "tf_max_diff": tf_diff, "flax_max_diff": flax_diff}, f, indent=2)


if __name__ == "__main__":
    main()
