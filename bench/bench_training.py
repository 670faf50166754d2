"""Training steps per second: polyformers' Trainer vs Transformers' Trainer, side by side in one run.

Both train the same BERT-base sequence classifier (random weights, the same for both) on the same
synthetic batches (batch 8 x 128 tokens by default), with AdamW, a linear schedule, gradient
clipping and logging every 5 steps. Each round runs ``--steps`` optimisation steps with each
library in turn (A, B, A, B…); the table gives median steps per second and the ratio.

    python bench/bench_training.py                     # BERT-base, 8 x 128, 3 rounds of 6 steps
    python bench/bench_training.py --layers 2 --quick  # for development

Needs polyformers (core + BERT plugin), transformers and accelerate in one environment.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402


def make_rows(n: int, seq_len: int, vocab: int, seed: int = 0) -> list[dict]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, vocab, (n, seq_len), generator=generator)
    ids[:, 0], ids[:, -1] = 101, 102
    labels = torch.randint(0, 2, (n,), generator=generator)
    return [
        {"input_ids": ids[i].tolist(), "attention_mask": [1] * seq_len, "token_type_ids": [0] * seq_len, "labels": int(labels[i])}
        for i in range(n)
    ]


def run_once(library: str, checkpoint: str, rows: list[dict], batch: int, steps: int, workdir: str) -> float:
    """Seconds per optimisation step, from the Trainer's own train_runtime."""
    if library == "polyformers":
        from polyformers import BertForSequenceClassification, Trainer, TrainingArguments, default_data_collator
    else:
        from transformers import BertForSequenceClassification, Trainer, TrainingArguments, default_data_collator
    model = BertForSequenceClassification.from_pretrained(checkpoint)
    extra = {"use_cpu": True} if library == "transformers" else {}
    args = TrainingArguments(
        os.path.join(workdir, library), per_device_train_batch_size=batch, max_steps=steps, learning_rate=2e-5,
        logging_steps=5, save_strategy="no", report_to="none", disable_tqdm=True, optim="adamw_torch", seed=0, **extra,
    )
    trainer = Trainer(model, args, train_dataset=rows, data_collator=default_data_collator)
    output = trainer.train()
    return output.metrics["train_runtime"] / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 3 steps")
    options = parser.parse_args()
    if options.quick:
        options.rounds, options.steps = 2, 3

    import transformers

    import polyformers

    with tempfile.TemporaryDirectory() as workdir:
        torch.manual_seed(0)
        config = transformers.BertConfig(num_hidden_layers=options.layers, num_labels=2)
        checkpoint = os.path.join(workdir, "bert")
        transformers.BertForSequenceClassification(config).save_pretrained(checkpoint)
        rows = make_rows(options.batch * options.steps, options.seq_len, config.vocab_size)
        timings: dict[str, list[float]] = {"polyformers": [], "transformers": []}
        for library in timings:  # warm-up: imports, first allocations
            run_once(library, checkpoint, rows[: options.batch * 2], options.batch, 2, workdir)
        for _ in range(options.rounds):
            for library in timings:
                timings[library].append(run_once(library, checkpoint, rows, options.batch, options.steps, workdir))

    print(
        f"{time.strftime('%Y-%m-%d')}  torch {torch.__version__}, transformers {transformers.__version__}, "
        f"polyformers {polyformers.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"BERT ({options.layers} layers) sequence classification, batch {options.batch} x {options.seq_len}, AdamW, "
          f"{options.rounds} rounds of {options.steps} steps, medians")
    ours, theirs = (statistics.median(timings[k]) for k in ("polyformers", "transformers"))
    print(f"{'':32}{'polyformers':>12}{'transformers':>14}{'ratio pf/tf':>13}")
    print(f"{'seconds per step':32}{ours:12.3f}{theirs:14.3f}{ours / theirs:12.2f}x")
    print(f"{'steps per second':32}{1 / ours:12.3f}{1 / theirs:14.3f}{theirs / ours:12.2f}x")


if __name__ == "__main__":
    main()
