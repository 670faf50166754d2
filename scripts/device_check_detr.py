"""DETR against Transformers with timm backbones, on a machine that has timm (the GPU machine's image does).

    python scripts/device_check_detr.py [--device cuda] [--json out.json]

The test environment has no timm, so checkpoints Transformers writes with its default (timm)
backbone cannot be produced there; this script produces them where timm is installed and checks:
1. for timm resnet18 and resnet50, with and without dilation (DC5), detection and segmentation:
   a checkpoint Transformers writes loads into ours with nothing missing, and logits, pred_boxes,
   pred_masks and the loss (same targets) agree in fp32; ours saved loads back into Transformers;
2. DETR-ResNet-50 (timm) on one 800x800 image, ours vs Transformers, fp32 (medians, interleaved).
Needs polyformers-core and polyformers-detr installed.

Seen on an H100 (torch 2.11+cu130, Transformers 5.17, timm 1.0.29; 2026-11-26, TF32 off): all 8
cases (resnet18/resnet50 x dilation off/on x detection/segmentation) load with 0 missing and 0
unexpected keys, logits / pred_boxes / pred_masks / loss differ by 0.0, and Transformers loads our
saved checkpoints with 0 missing and 0 unexpected keys; DETR-R50 800x800 fp32 15.54 ms vs
17.03 ms (0.91x), pred_boxes diff 0.0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch

import polyformers

SMALL = dict(d_model=64, encoder_layers=2, decoder_layers=2, encoder_ffn_dim=128, decoder_ffn_dim=128, encoder_attention_heads=8, decoder_attention_heads=8, num_queries=10, num_labels=4)


def hf_config(transformers, backbone: str, dilation: bool, **extra):
    """Transformers' DetrConfig with a random timm backbone (the v4 keywords; 5.x still accepts them)."""
    return transformers.DetrConfig(use_timm_backbone=True, backbone=backbone, use_pretrained_backbone=False, dilation=dilation, **SMALL, **extra)


def labels_for(device: str, with_masks: bool, size: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    out = []
    for n in (2, 3):
        target = {"class_labels": torch.randint(0, 4, (n,), generator=g).to(device), "boxes": (torch.rand(n, 4, generator=g) * 0.4 + 0.2).to(device)}
        if with_masks:
            target["masks"] = (torch.rand(n, size, size, generator=g) > 0.5).float().to(device)
        out.append(target)
    return out


def check_parity(device: str, results: dict) -> None:
    import transformers

    size = 128
    g = torch.Generator().manual_seed(0)
    pixels = torch.randn(2, 3, size, size, generator=g).to(device)
    mask = torch.ones(2, size, size, dtype=torch.long)
    mask[1, :, 96:] = 0
    mask = mask.to(device)
    rows = {}
    for backbone in ("resnet18", "resnet50"):
        for dilation in (False, True):
            for name in ("DetrForObjectDetection", "DetrForSegmentation"):
                key = f"{name}/{backbone}/dilation={dilation}"
                try:
                    with tempfile.TemporaryDirectory() as d, tempfile.TemporaryDirectory() as d2:
                        torch.manual_seed(0)
                        theirs = getattr(transformers, name)(hf_config(transformers, backbone, dilation)).eval()
                        theirs.save_pretrained(d)
                        ours, info = getattr(polyformers, name).from_pretrained(d, output_loading_info=True)
                        ours = ours.to(device).eval()
                        theirs = theirs.to(device)
                        labels = labels_for(device, name == "DetrForSegmentation", size)
                        with torch.no_grad():
                            a = ours(pixel_values=pixels, pixel_mask=mask, labels=labels)
                            b = theirs(pixel_values=pixels, pixel_mask=mask, labels=labels)
                        row = {
                            "missing": len(info["missing_keys"]),
                            "unexpected": len(info["unexpected_keys"]),
                            "logits": float((a.logits - b.logits).abs().max()),
                            "pred_boxes": float((a.pred_boxes - b.pred_boxes).abs().max()),
                            "loss": float((a.loss - b.loss).abs()),
                        }
                        if name == "DetrForSegmentation":
                            row["pred_masks"] = float((a.pred_masks - b.pred_masks).abs().max())
                        ours.save_pretrained(d2)
                        _, back = getattr(transformers, name).from_pretrained(d2, output_loading_info=True)
                        row["transformers_loads_ours_missing"] = len(back["missing_keys"])
                        row["transformers_loads_ours_unexpected"] = len(back["unexpected_keys"])
                        rows[key] = row
                except Exception as exc:  # report every case
                    rows[key] = f"FAILED: {type(exc).__name__}: {exc}"[:400]
    results["timm_parity"] = rows


def check_speed(device: str, results: dict) -> None:
    import transformers

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    with tempfile.TemporaryDirectory() as d:
        torch.manual_seed(0)
        transformers.DetrForObjectDetection(transformers.DetrConfig(use_timm_backbone=True, backbone="resnet50", use_pretrained_backbone=False)).save_pretrained(d)
        ours = polyformers.DetrForObjectDetection.from_pretrained(d).to(device).eval()
        theirs = transformers.DetrForObjectDetection.from_pretrained(d).to(device).eval()
    x = torch.randn(1, 3, 800, 800, device=device)
    with torch.inference_mode():
        for _ in range(3):
            ours(x), theirs(x)
        sync()
        ta, tb = [], []
        for _ in range(20):
            start = time.perf_counter(); ours(x); sync(); ta.append(time.perf_counter() - start)
            start = time.perf_counter(); theirs(x); sync(); tb.append(time.perf_counter() - start)
        diff = float((ours(x).pred_boxes - theirs(x).pred_boxes).abs().max())
    a, b = statistics.median(ta) * 1e3, statistics.median(tb) * 1e3
    results["detr_r50_800"] = {"ours_ms": round(a, 2), "transformers_ms": round(b, 2), "ratio": round(a / b, 3), "max_pred_boxes_diff": diff}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.backends.cudnn.allow_tf32 = False  # full fp32 convolutions on both sides, for parity
    torch.backends.cuda.matmul.allow_tf32 = False
    import transformers

    results: dict = {"device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu", "torch": torch.__version__, "transformers": transformers.__version__}
    try:
        import timm

        results["timm"] = timm.__version__
    except ImportError:
        results["timm"] = "not installed: nothing to check"
        print(json.dumps(results, indent=2))
        return
    for check in (check_parity, check_speed):
        try:
            check(args.device, results)
        except Exception as exc:
            results[check.__name__] = f"FAILED: {type(exc).__name__}: {exc}"[:600]
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
