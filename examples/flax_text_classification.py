"""Fine-tune all-MiniLM-L6-v2 (real weights) for sentiment with JAX/Flax, then report test accuracy.

The loop of Transformers' ``run_glue.py`` Flax example, built from ``polyformers.training_flax``:
AdamW without decay on biases and LayerNorm scales, linear warmup and decay, a compiled train
step with dropout, an evaluation step. The data (``finetune_data.sentiment_dataset``) is made
here; its test split uses opinion words the training split never shows.

    python examples/flax_text_classification.py [--epochs 3] [--batch-size 16] [--lr 1e-4]
                                                [--output-dir DIR] [--max-train N]

Measured with the defaults (CPU, 2 shared cores): test accuracy 1.00 on the 160 test sentences,
43 s in all (about 20 s of it compiling the train step).

With ``--output-dir`` the final train state and the model are saved there (the model loads in
PyTorch with ``BertForSequenceClassification.from_pretrained(DIR)``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from finetune_data import SENTIMENT_LABELS, minilm_path, sentiment_dataset
from polyformers import AutoTokenizer, FlaxAutoModelForSequenceClassification
from polyformers.data.data_collator import DataCollatorWithPadding
from polyformers.training_flax import (
    FlaxTrainState,
    adamw_with_decay_mask,
    batches,
    create_learning_rate_fn,
    make_eval_step,
    make_train_step,
    save_train_state,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--output-dir", default=None, help="save the train state and the model here")
    parser.add_argument("--max-train", type=int, default=None, help="train on the first N examples only")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    train_rows, test_rows = sentiment_dataset()
    train_rows = train_rows[: args.max_train]

    path = minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = FlaxAutoModelForSequenceClassification.from_pretrained(
        path, num_labels=len(SENTIMENT_LABELS), id2label=dict(enumerate(SENTIMENT_LABELS)), seed=args.seed
    )

    def encode(rows: list[dict]) -> list[dict]:
        return [{**tokenizer(row["text"], truncation=True, max_length=64), "labels": row["label"]} for row in rows]

    train, test = encode(train_rows), encode(test_rows)
    # One padded length for every batch: each new shape would compile the step again.
    length = max(len(row["input_ids"]) for row in train + test)
    collate = DataCollatorWithPadding(tokenizer, padding="max_length", max_length=length, return_tensors="np")

    warmup_steps = len(train) // args.batch_size // 2  # half an epoch
    learning_rate = create_learning_rate_fn(len(train), args.batch_size, args.epochs, warmup_steps, args.lr)
    tx = adamw_with_decay_mask(learning_rate, weight_decay=args.weight_decay)
    state = FlaxTrainState.create(model, tx, seed=args.seed)
    train_step, eval_step = make_train_step(model, learning_rate_fn=learning_rate), make_eval_step(model)

    for epoch in range(args.epochs):
        losses = []
        for batch in batches(train, args.batch_size, collate, shuffle=True, seed=args.seed + epoch, drop_last=True):
            state, metrics = train_step(state, batch)
            losses.append(metrics["loss"])
        print(f"epoch {epoch + 1}: train loss {float(np.mean(losses)):.4f} ({time.perf_counter() - start:.0f} s)")

    correct = 0
    for batch in batches(test, 32, collate):
        predictions = np.asarray(eval_step(state, batch)["logits"]).argmax(-1)
        correct += int((predictions == batch["labels"]).sum())

    if args.output_dir:
        save_train_state(state, args.output_dir, model=model)
        print(f"saved the train state and the model to {args.output_dir}")
    elapsed = time.perf_counter() - start
    print(f"accuracy {correct / len(test):.2f} ({len(test)} test sentences, {args.epochs} epochs, {elapsed:.0f} s)")


if __name__ == "__main__":
    main()
