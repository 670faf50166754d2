"""polyformers vs Hugging Face Transformers on one BERT checkpoint, side by side in one run.

Measures import time, time to the first ``from_pretrained`` in a fresh process, warm load time
and peak memory of a load (against a bare ``safetensors.torch.load_file``), and fp32 forward
latency under ``torch.inference_mode()``. Every number is a median; timings of the two libraries
are taken alternately so that a noisy neighbour hits both alike.

    python bench/bench_bert.py                  # BERT-base, a few minutes on 2 cores
    python bench/bench_bert.py --layers 2 --quick
    python bench/bench_bert.py --json results.json

The checkpoint is a randomly initialised ``transformers.BertModel`` saved as safetensors to a
temporary directory; nothing touches the network.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from typing import Any, Callable

LIBRARIES = ("polyformers", "transformers")
RESULT_MARKER = "BENCH_RESULT "
SEED = 0
QUIET_OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}


@dataclass
class Repeats:
    imports: int  # fresh interpreters per library for the import timings
    first_load: int  # fresh interpreters per library for import + from_pretrained
    warm_load: int  # from_pretrained calls per library in this process
    forward_big: int  # forward calls per library, batch 8 x 128
    forward_small: int  # forward calls per library, batch 1 x 16

    @classmethod
    def for_mode(cls, quick: bool) -> "Repeats":
        return cls(3, 2, 3, 3, 10) if quick else cls(7, 5, 7, 10, 40)


@dataclass
class Row:
    """One line of the table: a measurement for both libraries, lower is better."""

    name: str
    unit: str
    values: dict[str, float]

    @property
    def ratio(self) -> float:
        return self.values["polyformers"] / self.values["transformers"]


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, unit: str, values: dict[str, float]) -> None:
        self.rows.append(Row(name, unit, values))


# ---------------------------------------------------------------------------------------------
# Checkpoint


def make_checkpoint(directory: str, num_layers: int) -> str:
    """Save a seeded random BERT (base sizes, ``num_layers`` layers) as safetensors; return its path."""
    import torch
    import transformers

    torch.manual_seed(SEED)
    config = transformers.BertConfig(num_hidden_layers=num_layers)
    model = transformers.BertModel(config)
    model.save_pretrained(directory, safe_serialization=True)
    return os.path.join(directory, "model.safetensors")


# ---------------------------------------------------------------------------------------------
# Fresh-process measurements


def child_env() -> dict[str, str]:
    env = dict(os.environ, **QUIET_OFFLINE_ENV)
    env.pop("PYTHONPATH", None)
    return env


def run_child(code: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; it reports by printing RESULT_MARKER + JSON."""
    preamble = f"import json, time\ndef report(**kw): print({RESULT_MARKER!r} + json.dumps(kw), flush=True)\n"
    proc = subprocess.run(
        [sys.executable, "-c", preamble + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=600,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER) :])
    raise RuntimeError(f"child process failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


def median_of_children(codes: dict[str, str], repeats: int) -> dict[str, dict[str, float]]:
    """Run each library's child ``repeats`` times, alternating libraries; median of every key."""
    samples: dict[str, list[dict[str, Any]]] = {lib: [] for lib in codes}
    for _ in range(repeats):
        for lib, code in codes.items():
            samples[lib].append(run_child(code))
    return {lib: {key: statistics.median(s[key] for s in runs) for key in runs[0]} for lib, runs in samples.items()}


def import_code(lib: str, checkpoint_dir: str) -> str:
    # "First use" builds the model on the meta device: it resolves the class and imports the
    # modeling code (which a lazy package defers) without reading or initialising weights.
    return f"""
        t0 = time.perf_counter()
        import {lib}
        t1 = time.perf_counter()
        from {lib} import AutoModel, AutoConfig
        t2 = time.perf_counter()
        import torch
        config = AutoConfig.from_pretrained({checkpoint_dir!r})
        with torch.device("meta"):
            AutoModel.from_config(config)
        t3 = time.perf_counter()
        report(import_package=t1 - t0, import_automodel=t2 - t0, first_use=t3 - t0)
    """


def first_load_code(lib: str, checkpoint_dir: str) -> str:
    return f"""
        t0 = time.perf_counter()
        from {lib} import AutoModel
        model = AutoModel.from_pretrained({checkpoint_dir!r})
        report(first_load=time.perf_counter() - t0)
    """


def memory_code(loader: str, checkpoint_dir: str, weights_path: str) -> str:
    """Peak RSS of a load over the post-import baseline, then after a forward touches every weight."""
    if loader == "load_file":
        setup = "from safetensors.torch import load_file"
        load = f"weights = load_file({weights_path!r}); touch = lambda: sum(float(t.float().sum()) for t in weights.values())"
    else:
        setup = f"from {loader} import AutoModel"
        load = (
            f"model = AutoModel.from_pretrained({checkpoint_dir!r})\n"
            "touch = lambda: model(torch.ones(1, 16, dtype=torch.long))"
        )
    return f"""
        import psutil, torch
        {setup}
        def peak_mb():
            # VmHWM, not ru_maxrss: after fork/exec ru_maxrss starts at the parent's peak.
            with open("/proc/self/status") as f:
                return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024
        baseline = psutil.Process().memory_info().rss / 2**20
        {textwrap.indent(load, " " * 8).lstrip()}
        after_load = peak_mb()
        with torch.inference_mode():
            touch()
        report(load=after_load - baseline, load_and_forward=peak_mb() - baseline)
    """


def measure_fresh_processes(report: Report, checkpoint_dir: str, weights_path: str, repeats: Repeats) -> None:
    imports = median_of_children({lib: import_code(lib, checkpoint_dir) for lib in LIBRARIES}, repeats.imports)
    report.add("import <package>", "s", {lib: imports[lib]["import_package"] for lib in LIBRARIES})
    report.add("from <package> import AutoModel", "s", {lib: imports[lib]["import_automodel"] for lib in LIBRARIES})
    report.add("  + first use (meta from_config)", "s", {lib: imports[lib]["first_use"] for lib in LIBRARIES})

    first = median_of_children({lib: first_load_code(lib, checkpoint_dir) for lib in LIBRARIES}, repeats.first_load)
    report.add("fresh process: import + from_pretrained", "s", {lib: first[lib]["first_load"] for lib in LIBRARIES})

    loaders = (*LIBRARIES, "load_file")
    memory = median_of_children({name: memory_code(name, checkpoint_dir, weights_path) for name in loaders}, max(1, repeats.first_load // 2))
    report.add("peak RSS increase, load", "MB", {lib: memory[lib]["load"] for lib in LIBRARIES})
    report.add("peak RSS increase, load + 1 forward", "MB", {lib: memory[lib]["load_and_forward"] for lib in LIBRARIES})
    report.notes["load_file_peak_rss_mb"] = memory["load_file"]


# ---------------------------------------------------------------------------------------------
# Warm-process measurements


def interleaved_medians(calls: dict[str, Callable[[], Any]], repeats: int, warmup: int = 0) -> dict[str, float]:
    """Median seconds per call, calling A, B, A, B... so that drift hits every callable alike."""
    for _ in range(warmup):
        for call in calls.values():
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def load_both(checkpoint_dir: str) -> dict[str, Any]:
    import polyformers
    import transformers

    transformers.logging.set_verbosity_error()
    return {
        "polyformers": lambda: polyformers.AutoModel.from_pretrained(checkpoint_dir),
        "transformers": lambda: transformers.AutoModel.from_pretrained(checkpoint_dir),
    }


def measure_warm_load(report: Report, checkpoint_dir: str, weights_path: str, repeats: Repeats) -> dict[str, Any]:
    from safetensors.torch import load_file

    def load_file_touched() -> None:
        for tensor in load_file(weights_path).values():
            tensor.sum()

    loaders = load_both(checkpoint_dir)
    models = {lib: load() for lib, load in loaders.items()}  # also warms imports and page cache
    calls = {**loaders, "load_file": lambda: load_file(weights_path), "load_file_touched": load_file_touched}
    times = interleaved_medians(calls, repeats.warm_load, warmup=1)
    report.add("warm from_pretrained", "ms", {lib: 1e3 * times[lib] for lib in LIBRARIES})
    report.notes["load_file_ms"] = 1e3 * times["load_file"]
    report.notes["load_file_touched_ms"] = 1e3 * times["load_file_touched"]
    report.notes["from_pretrained_over_load_file"] = {lib: times[lib] / times["load_file"] for lib in LIBRARIES}
    report.notes["from_pretrained_over_load_file_touched"] = {lib: times[lib] / times["load_file_touched"] for lib in LIBRARIES}
    return models


def measure_forward(report: Report, models: dict[str, Any], repeats: Repeats) -> None:
    import torch

    vocab_size = models["transformers"].config.vocab_size
    generator = torch.Generator().manual_seed(SEED)
    for (batch, length), n in (((8, 128), repeats.forward_big), ((1, 16), repeats.forward_small)):
        input_ids = torch.randint(vocab_size, (batch, length), generator=generator)
        attention_mask = torch.ones_like(input_ids)

        def forward(model: Any) -> Callable[[], Any]:
            return lambda: model(input_ids=input_ids, attention_mask=attention_mask)

        with torch.inference_mode():
            calls = {lib: forward(model) for lib, model in models.items()}
            times = interleaved_medians(calls, n, warmup=2)
            outputs = {lib: call().last_hidden_state for lib, call in calls.items()}
        diff = (outputs["polyformers"] - outputs["transformers"]).abs().max().item()
        report.add(f"forward {batch}x{length}", "ms", {lib: 1e3 * times[lib] for lib in LIBRARIES})
        report.notes[f"max_abs_diff_{batch}x{length}"] = diff


# ---------------------------------------------------------------------------------------------
# Output


def format_table(report: Report, weights_mb: float) -> str:
    lines = [f"{'':42}{'polyformers':>13}{'transformers':>14}{'ratio pf/tf':>13}"]
    for row in report.rows:
        pf, tf = (row.values[lib] for lib in LIBRARIES)
        lines.append(f"{row.name + f' ({row.unit})':42}{pf:13.3f}{tf:14.3f}{row.ratio:12.2f}x")
    lines.append("ratio < 1: polyformers is faster / uses less memory; > 1: slower / more.")
    notes = report.notes
    lines.append("")
    lines.append(f"weights file: {weights_mb:.1f} MB")
    lines.append(f"safetensors load_file: {notes['load_file_ms']:.1f} ms (mmap), {notes['load_file_touched_ms']:.1f} ms with every tensor read")
    for lib in LIBRARIES:
        over = notes["from_pretrained_over_load_file"][lib]
        over_touched = notes["from_pretrained_over_load_file_touched"][lib]
        lines.append(f"{lib:13} from_pretrained / load_file: {over:7.1f}x (mmap), {over_touched:5.2f}x (read)")
    for row in report.rows:
        if row.unit == "MB":
            ratios = ", ".join(f"{lib} {row.values[lib] / weights_mb:.2f}x" for lib in LIBRARIES)
            lines.append(f"{row.name} / weights: {ratios}")
    floor = notes["load_file_peak_rss_mb"]
    lines.append(f"peak RSS increase of load_file: {floor['load']:.0f} MB, {floor['load_and_forward']:.0f} MB after reading every tensor")
    diffs = ", ".join(f"{k.removeprefix('max_abs_diff_')}: {v:.2e}" for k, v in notes.items() if k.startswith("max_abs_diff"))
    lines.append(f"max |last_hidden_state difference|: {diffs}")
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    import platform

    import polyformers
    import torch
    import transformers

    return {
        "date": time.strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "polyformers": polyformers.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--layers", type=int, default=12, help="encoder layers of the checkpoint (12 = BERT-base)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.update(QUIET_OFFLINE_ENV)  # before transformers is imported
    repeats = Repeats.for_mode(args.quick)
    report = Report()
    with tempfile.TemporaryDirectory(prefix="bench_bert_") as checkpoint_dir:
        weights_path = make_checkpoint(checkpoint_dir, args.layers)
        weights_mb = os.path.getsize(weights_path) / 2**20
        print(f"checkpoint: BERT-base sizes, {args.layers} layers, {weights_mb:.1f} MB; measuring...", flush=True)
        measure_fresh_processes(report, checkpoint_dir, weights_path, repeats)
        models = measure_warm_load(report, checkpoint_dir, weights_path, repeats)
        measure_forward(report, models, repeats)
    env = environment()
    print(f"\n{env['date']}  torch {env['torch']}, transformers {env['transformers']}, polyformers {env['polyformers']}, {env['threads']} threads")
    print(format_table(report, weights_mb))
    if args.json:
        results = {
            "environment": env,
            "layers": args.layers,
            "quick": args.quick,
            "weights_mb": weights_mb,
            "rows": [{"name": r.name, "unit": r.unit, **r.values, "ratio": r.ratio} for r in report.rows],
            "notes": report.notes,
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
