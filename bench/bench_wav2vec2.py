"""Wav2Vec2-base forward on 10 s of audio, polyformers next to Transformers, in each framework.

    python bench/bench_wav2vec2.py [--quick] [--seconds S] [--layers N] [--json PATH]

One checkpoint (Wav2Vec2-base sizes: 7 conv layers, 12 x 768 Transformer layers, group norm;
seeded random weights, saved by Transformers' PyTorch ``Wav2Vec2ForCTC``) is loaded by every
model. Each pair (ours, theirs) is timed interleaved in one process; the table gives medians and
ratios (ours / theirs: below 1 is faster). Input: one utterance of ``--seconds`` (default 10) of
16 kHz noise-like audio, batch 1.

Which rows appear depends on the Transformers installed: PyTorch always; TensorFlow (``tf.function``)
and Flax (``jax.jit``) only with Transformers 4.x, the last with those models (the cached
'oracle-v4' environment of ``scripts/test-all.sh``). With Transformers 5.x the TensorFlow and Flax
rows time ours against our PyTorch instead, so all three frameworks are still measured.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # Transformers 4's TF models need Keras 2 (tf-keras)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from bench_frameworks import timed_pair  # noqa: E402  (this folder is on sys.path when run as a script)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="3 repetitions instead of 10")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--frameworks", default="pt,tf,flax")
    parser.add_argument("--json")
    args = parser.parse_args()
    repeats = 3 if args.quick else 10
    frameworks = args.frameworks.split(",")

    import torch
    import transformers

    import polyformers

    has_v4_models = transformers.__version__.startswith("4.")
    rows: dict[str, tuple[float, float]] = {}
    against: dict[str, str] = {}
    diffs: dict[str, float] = {}
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal((1, int(args.seconds * 16000))) * 0.1).astype(np.float32)
    with tempfile.TemporaryDirectory() as d:
        torch.manual_seed(0)
        transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(num_hidden_layers=args.layers, vocab_size=32)).save_pretrained(d)

        ours_pt = polyformers.Wav2Vec2ForCTC.from_pretrained(d)
        theirs_pt = transformers.Wav2Vec2ForCTC.from_pretrained(d).eval()
        x = torch.from_numpy(audio)
        with torch.inference_mode():
            rows["PyTorch eager"] = timed_pair(lambda: ours_pt(x).logits, lambda: theirs_pt(x).logits, repeats, lambda t: t)
            reference = ours_pt(x).logits.numpy()
            diffs["PyTorch eager"] = float(np.abs(theirs_pt(x).logits.numpy() - reference).max())
        against["PyTorch eager"] = f"transformers {transformers.__version__}"

        if "tf" in frameworks:
            import tensorflow as tf

            ours_tf = polyformers.TFWav2Vec2ForCTC.from_pretrained(d, from_pt=True)
            f_ours = tf.function(lambda t: ours_tf(t, training=False).logits)
            tx = tf.constant(audio)
            if has_v4_models:
                theirs_tf = transformers.TFWav2Vec2ForCTC.from_pretrained(d, from_pt=True)
                f_theirs = tf.function(lambda t: theirs_tf(t, training=False).logits)
                rows["TensorFlow tf.function"] = timed_pair(lambda: f_ours(tx), lambda: f_theirs(tx), repeats, lambda t: t.numpy())
                against["TensorFlow tf.function"] = f"transformers {transformers.__version__} TF"
            else:
                with torch.inference_mode():
                    rows["TensorFlow tf.function"] = timed_pair(lambda: f_ours(tx), lambda: ours_pt(x).logits, repeats, lambda t: t)
                against["TensorFlow tf.function"] = "our PyTorch (Transformers 5 has no TF)"
            diffs["TensorFlow tf.function"] = float(np.abs(f_ours(tx).numpy() - reference).max())

        if "flax" in frameworks:
            import jax

            ours_fx = polyformers.FlaxWav2Vec2ForCTC.from_pretrained(d, from_pt=True)
            jx = jax.numpy.asarray(audio)
            if has_v4_models:
                # Transformers' Flax Wav2Vec2 supports only do_stable_layer_norm=True; base is not, so
                # its row uses a stable-layer-norm checkpoint of the same size (both models load it).
                with tempfile.TemporaryDirectory() as d2:
                    transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(num_hidden_layers=args.layers, vocab_size=32, do_stable_layer_norm=True, feat_extract_norm="layer")).save_pretrained(d2)
                    ours_st = polyformers.FlaxWav2Vec2ForCTC.from_pretrained(d2, from_pt=True)
                    theirs_st = transformers.FlaxWav2Vec2ForCTC.from_pretrained(d2, from_pt=True)
                rows["Flax jax.jit (stable layer norm)"] = timed_pair(lambda: ours_st(jx).logits, lambda: theirs_st(jx).logits, repeats, lambda t: t.block_until_ready())
                against["Flax jax.jit (stable layer norm)"] = f"transformers {transformers.__version__} Flax"
            with torch.inference_mode():
                rows["Flax jax.jit"] = timed_pair(lambda: ours_fx(jx).logits, lambda: ours_pt(x).logits, repeats, lambda t: getattr(t, "block_until_ready", lambda: t)())
            against["Flax jax.jit"] = "our PyTorch (Transformers' Flax lacks group norm)"
            diffs["Flax jax.jit"] = float(np.abs(np.asarray(ours_fx(jx).logits) - reference).max())

    versions = f"torch {torch.__version__}, transformers {transformers.__version__}"
    print(f"Wav2Vec2-base ({args.layers} layers) ForCTC forward, batch 1 x {args.seconds:g} s at 16 kHz, medians of {repeats}; {versions}")
    print(f"{'':36s} {'polyformers ms':>15s} {'reference ms':>13s} {'ratio':>7s}  reference")
    for name, (a, b) in rows.items():
        print(f"{name:36s} {a:15.1f} {b:13.1f} {a / b:6.2f}x  {against[name]}")
    print("max |logits - our PyTorch|: " + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows_ms": rows, "reference": against, "max_diff": diffs}, f, indent=2)


if __name__ == "__main__":
    main()
