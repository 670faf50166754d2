"""The Trainer on other heads and plugins: masked-LM pre-training with the MLM collator (exact
resume although the collator draws random numbers), Wav2Vec2 CTC with audio batches, and
audio classification."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polyformers import BertForMaskedLM, DataCollatorForLanguageModeling, Trainer, TrainingArguments

from conftest import StopAt, sentiment_rows, tiny_bert_config
from conftest import logged_losses as losses


def test_masked_lm_with_mlm_collator_resumes_exactly(tmp_path, tokenizer):
    rows = [{k: v for k, v in r.items() if k in ("input_ids", "attention_mask")} for r in sentiment_rows(tokenizer, n=16)]

    def run(out, callbacks=(), resume=None, seed=0):
        torch.manual_seed(seed)
        model = BertForMaskedLM(tiny_bert_config(tokenizer.vocab_size, dropout=0.1))
        args = TrainingArguments(
            str(out), per_device_train_batch_size=4, max_steps=6, learning_rate=1e-3, logging_steps=1, save_strategy="steps",
            save_steps=3, disable_tqdm=True, report_to="none",
        )
        trainer = Trainer(model, args, train_dataset=rows, data_collator=DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.3), callbacks=list(callbacks))
        trainer.train(resume_from_checkpoint=resume)
        return trainer

    full = run(tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", callbacks=[StopAt(3)])
    resumed = run(tmp_path / "cut", resume=True, seed=1)
    assert losses(resumed) == losses(full)
    assert all(np.isfinite(losses(full)))


def tiny_wav2vec2(cls, **overrides):
    pytest.importorskip("polyformers_wav2vec2")
    import polyformers

    config = polyformers.Wav2Vec2Config(
        vocab_size=12, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=20, conv_dim=(16, 16),
        conv_kernel=(5, 3), conv_stride=(3, 2), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, layerdrop=0.0,
        mask_time_prob=0.0, ctc_loss_reduction="mean", **overrides,
    )
    torch.manual_seed(0)
    return getattr(polyformers, cls)(config)


def audio_rows(n: int, with_text_labels: bool) -> list[dict]:
    g = np.random.default_rng(0)
    rows = []
    for i in range(n):
        samples = 1200 + 100 * (i % 4)
        row = {"input_values": g.standard_normal(samples).astype(np.float32)}
        row["labels"] = [int(x) for x in g.integers(1, 12, 3 + i % 3)] if with_text_labels else i % 3
        rows.append(row)
    return rows


def pad_audio(features: list[dict]) -> dict:
    """Pads waveforms with zeros (attention_mask marks the real samples) and CTC targets with -100."""
    longest = max(len(f["input_values"]) for f in features)
    values = torch.zeros(len(features), longest)
    mask = torch.zeros(len(features), longest, dtype=torch.long)
    for i, f in enumerate(features):
        values[i, : len(f["input_values"])] = torch.as_tensor(f["input_values"])
        mask[i, : len(f["input_values"])] = 1
    batch = {"input_values": values, "attention_mask": mask}
    if isinstance(features[0]["labels"], list):
        width = max(len(f["labels"]) for f in features)
        batch["labels"] = torch.tensor([f["labels"] + [-100] * (width - len(f["labels"])) for f in features])
    else:
        batch["labels"] = torch.tensor([f["labels"] for f in features])
    return batch


@pytest.mark.parametrize("head, text_labels", [("Wav2Vec2ForCTC", True), ("Wav2Vec2ForSequenceClassification", False)])
def test_wav2vec2_heads_train(tmp_path, head, text_labels):
    model = tiny_wav2vec2(head, num_labels=3)
    rows = audio_rows(12, text_labels)
    args = TrainingArguments(
        str(tmp_path), per_device_train_batch_size=4, num_train_epochs=4, learning_rate=3e-3, logging_steps=3,
        eval_strategy="epoch", save_strategy="epoch", save_total_limit=1, disable_tqdm=True, report_to="none",
    )
    trainer = Trainer(model, args, train_dataset=rows, eval_dataset=rows, data_collator=pad_audio)
    first = trainer.evaluate()["eval_loss"]
    trainer.train()
    assert trainer.evaluate()["eval_loss"] < first
    type(model).from_pretrained(tmp_path / "checkpoint-12")  # the checkpoint loads back
