"""Fine-tune the real all-MiniLM-L6-v2 checkpoint for sentiment classification with Keras.

The TensorFlow model is built from the PyTorch safetensors weights; Transformers' TensorFlow
recipe does the rest: ``prepare_tf_dataset`` (tokenised examples -> padded batches, the ``text``
column dropped, ``label`` -> ``labels``), ``create_optimizer`` (warm-up, linear decay, AdamW that
spares LayerNorm and biases), ``compile`` without a loss (the model's own loss) and ``fit``.

    python examples/tf_text_classification.py [--epochs 3] [--batch-size 16] [--lr 1e-4]
        [--max-train N] [--output-dir DIR]

The data is :func:`finetune_data.sentiment_dataset`: 320 training and 160 test reviews whose test
split uses opinion words the training split never shows.
Measured here (2 cores, defaults): accuracy 1.000 on the 160 test sentences after 3 epochs, 53 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: no C++ info logs

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from finetune_data import SENTIMENT_LABELS, minilm_path, sentiment_dataset  # noqa: E402

import keras  # noqa: E402

from polyformers import AutoTokenizer, TFAutoModelForSequenceClassification, create_optimizer  # noqa: E402


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-4, help="peak learning rate, after 10%% warm-up")
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--max-train", type=int, default=None, help="train on the first N examples only")
    parser.add_argument("--output-dir", default=None, help="save the fine-tuned model and tokenizer here")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str]) -> float:
    args = parse_args(argv)
    start = time.perf_counter()
    keras.utils.set_random_seed(args.seed)  # Python, numpy (prepare_tf_dataset's shuffling) and TF
    train_rows, test_rows = sentiment_dataset()
    train_rows = train_rows[: args.max_train]

    path = minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = TFAutoModelForSequenceClassification.from_pretrained(
        path,
        num_labels=len(SENTIMENT_LABELS),
        id2label=dict(enumerate(SENTIMENT_LABELS)),
        label2id={label: i for i, label in enumerate(SENTIMENT_LABELS)},
    )

    def encode(rows: list[dict]) -> list[dict]:
        # Keeps "text": prepare_tf_dataset drops what the model does not take.
        return [{**tokenizer(row["text"], truncation=True, max_length=64), **row} for row in rows]

    train = model.prepare_tf_dataset(encode(train_rows), batch_size=args.batch_size, shuffle=True, tokenizer=tokenizer)
    test = model.prepare_tf_dataset(encode(test_rows), batch_size=64, shuffle=False, tokenizer=tokenizer)

    num_train_steps = len(train) * args.epochs
    optimizer, _ = create_optimizer(
        init_lr=args.lr,
        num_train_steps=num_train_steps,
        num_warmup_steps=num_train_steps // 10,
        weight_decay_rate=args.weight_decay,
    )
    model.compile(optimizer=optimizer, metrics=["accuracy"])  # no loss: the model's own
    model.fit(train, epochs=args.epochs, verbose=2)

    logits = model.predict(test, verbose=0).logits
    accuracy = float(np.mean(logits.argmax(-1) == np.array([row["label"] for row in test_rows])))
    if args.output_dir:
        model.save_pretrained(args.output_dir)
        tokenizer.save_pretrained(args.output_dir)
    seconds = time.perf_counter() - start
    print(
        f"accuracy {accuracy:.3f} ({len(test_rows)} test sentences, {len(train_rows)} training, "
        f"{args.epochs} epochs, {seconds:.0f} s)"
    )
    return accuracy


if __name__ == "__main__":
    main(sys.argv[1:])
