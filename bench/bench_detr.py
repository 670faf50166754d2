"""DETR-ResNet-50 forward on one 800x800 image, polyformers next to Transformers, and our TF / Flax.

    python bench/bench_detr.py [--quick] [--size 800] [--frameworks pt,tf,flax] [--json PATH]

One checkpoint: Transformers' ``DetrForObjectDetection`` with detr-resnet-50's sizes (ResNet-50
backbone, 6 + 6 layers of d_model 256, 100 queries) and seeded random weights. Transformers 5's
default backbone is a timm ResNet-50, which needs the ``timm`` package; the same network as
Transformers' own ``ResNetConfig`` backbone (identical computation, other weight names) is used
here so that nothing beyond the test environment is needed. Each pair is timed interleaved in one
process; medians and ratios (ours / reference: below 1 is faster). Transformers has DETR in
PyTorch only, so our TensorFlow and Flax rows are timed against our PyTorch.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from bench_frameworks import timed_pair  # noqa: E402  (this folder is on sys.path when run as a script)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="3 repetitions instead of 10")
    parser.add_argument("--size", type=int, default=800)
    parser.add_argument("--frameworks", default="pt,tf,flax")
    parser.add_argument("--json")
    args = parser.parse_args()
    repeats = 3 if args.quick else 10
    frameworks = args.frameworks.split(",")

    import torch
    import transformers

    import polyformers

    rows: dict[str, tuple[float, float]] = {}
    against: dict[str, str] = {}
    diffs: dict[str, float] = {}
    pixels = np.random.default_rng(0).standard_normal((1, 3, args.size, args.size)).astype(np.float32)
    with tempfile.TemporaryDirectory() as d:
        torch.manual_seed(0)
        backbone = transformers.ResNetConfig(depths=[3, 4, 6, 3], hidden_sizes=[256, 512, 1024, 2048], layer_type="bottleneck", out_features=["stage4"])
        transformers.DetrForObjectDetection(transformers.DetrConfig(backbone_config=backbone)).save_pretrained(d)
        ours = polyformers.DetrForObjectDetection.from_pretrained(d).eval()
        theirs = transformers.DetrForObjectDetection.from_pretrained(d).eval()
        x = torch.from_numpy(pixels)
        with torch.inference_mode():
            rows["PyTorch eager"] = timed_pair(lambda: ours(x).logits, lambda: theirs(x).logits, repeats, lambda t: t)
            reference = ours(x).pred_boxes.numpy()
            diffs["Transformers PyTorch"] = float(np.abs(theirs(x).pred_boxes.numpy() - reference).max())
        against["PyTorch eager"] = f"transformers {transformers.__version__}"

        if "tf" in frameworks:
            import tensorflow as tf

            ours_tf = polyformers.TFDetrForObjectDetection.from_pretrained(d, from_pt=True)
            f_tf = tf.function(lambda t: ours_tf(t, training=False).pred_boxes)
            tx = tf.constant(pixels)
            with torch.inference_mode():
                rows["TensorFlow tf.function"] = timed_pair(lambda: f_tf(tx), lambda: ours(x).pred_boxes, repeats, lambda t: t)
            against["TensorFlow tf.function"] = "our PyTorch"
            diffs["our TensorFlow"] = float(np.abs(f_tf(tx).numpy() - reference).max())

        if "flax" in frameworks:
            import jax

            ours_fx = polyformers.FlaxDetrForObjectDetection.from_pretrained(d, from_pt=True)
            jx = jax.numpy.asarray(pixels)
            with torch.inference_mode():
                rows["Flax jax.jit"] = timed_pair(lambda: ours_fx(jx).pred_boxes, lambda: ours(x).pred_boxes, repeats, lambda t: getattr(t, "block_until_ready", lambda: t)())
            against["Flax jax.jit"] = "our PyTorch"
            diffs["our Flax"] = float(np.abs(np.asarray(ours_fx(jx).pred_boxes) - reference).max())

    print(f"DETR-ResNet-50 ForObjectDetection forward, 1 x 3 x {args.size} x {args.size}, medians of {repeats}; torch {torch.__version__}, transformers {transformers.__version__}")
    print(f"{'':28s} {'polyformers ms':>15s} {'reference ms':>13s} {'ratio':>7s}  reference")
    for name, (a, b) in rows.items():
        print(f"{name:28s} {a:15.1f} {b:13.1f} {a / b:6.2f}x  {against[name]}")
    print("max |pred_boxes - our PyTorch|: " + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows_ms": rows, "reference": against, "max_diff": diffs}, f, indent=2)


if __name__ == "__main__":
    main()
