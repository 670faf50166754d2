"""Fine-tune the real all-MiniLM-L6-v2 checkpoint for named-entity tagging (BIO tags) with Keras.

Words are tokenised into subwords; each word's first piece carries its tag and every other token
-100, which the model's loss ignores (:func:`finetune_data.align_labels`).
``DataCollatorForTokenClassification`` pads the labels with -100 batch by batch inside
``prepare_tf_dataset``; ``create_optimizer`` + ``compile`` without a loss + ``fit`` train.

    python examples/tf_token_classification.py [--epochs 5] [--batch-size 16] [--lr 2e-4]
        [--max-train N] [--output-dir DIR]

Reports token accuracy (on each word's first piece) and entity-level F1 (an entity counts when its
type and its exact word span are right, as seqeval scores CoNLL).
Measured here (2 cores, defaults): accuracy 1.000, entity F1 1.000 on the 100 test sentences after 5 epochs, 64 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: no C++ info logs

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from finetune_data import ENTITY_LABELS, EntityScores, encode_entities, entity_dataset, minilm_path  # noqa: E402

import keras  # noqa: E402

from polyformers import (  # noqa: E402
    AutoTokenizer,
    DataCollatorForTokenClassification,
    TFAutoModelForTokenClassification,
    create_optimizer,
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-4, help="peak learning rate, after 10%% warm-up")
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--max-train", type=int, default=None, help="train on the first N examples only")
    parser.add_argument("--output-dir", default=None, help="save the fine-tuned model and tokenizer here")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str]) -> tuple[float, float]:
    args = parse_args(argv)
    start = time.perf_counter()
    keras.utils.set_random_seed(args.seed)
    train_rows, test_rows = entity_dataset()
    train_rows = train_rows[: args.max_train]

    path = minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = TFAutoModelForTokenClassification.from_pretrained(
        path,
        num_labels=len(ENTITY_LABELS),
        id2label=dict(enumerate(ENTITY_LABELS)),
        label2id={label: i for i, label in enumerate(ENTITY_LABELS)},
    )

    collator = DataCollatorForTokenClassification(tokenizer, return_tensors="np")
    train_examples, test_examples = encode_entities(tokenizer, train_rows), encode_entities(tokenizer, test_rows)
    train = model.prepare_tf_dataset(train_examples, batch_size=args.batch_size, shuffle=True, collate_fn=collator)
    test = model.prepare_tf_dataset(test_examples, batch_size=64, shuffle=False, collate_fn=collator)

    num_train_steps = len(train) * args.epochs
    optimizer, _ = create_optimizer(
        init_lr=args.lr,
        num_train_steps=num_train_steps,
        num_warmup_steps=num_train_steps // 10,
        weight_decay_rate=args.weight_decay,
    )
    model.compile(optimizer=optimizer)  # no loss: the model's own, which skips the -100 labels
    model.fit(train, epochs=args.epochs, verbose=2)

    # Batches are padded to different lengths, so predict batch by batch rather than concatenating.
    scores = EntityScores()
    for inputs, labels in test.as_numpy_iterator():
        predictions = model(inputs, training=False).logits.numpy().argmax(-1)
        for prediction, label in zip(predictions, labels):
            kept = label != -100  # each word's first piece, in word order
            scores.add(prediction[kept], label[kept])
    if args.output_dir:
        model.save_pretrained(args.output_dir)
        tokenizer.save_pretrained(args.output_dir)
    print(
        f"accuracy {scores.accuracy:.3f}, entity F1 {scores.f1:.3f} ({len(test_rows)} test sentences, {scores.words} words, "
        f"{len(train_rows)} training, {args.epochs} epochs, {time.perf_counter() - start:.0f} s)"
    )
    return scores.accuracy, scores.f1


if __name__ == "__main__":
    main(sys.argv[1:])
