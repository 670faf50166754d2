"""The PyTorch Trainer: parity with Transformers' Trainer, exact resume, accumulation, checkpoints,
best-model selection, early stopping, datasets of every kind, and the errors users meet."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from polyformers import (
    BertForSequenceClassification,
    BertForTokenClassification,
    DataCollatorForTokenClassification,
    EarlyStoppingCallback,
    Trainer,
    TrainingArguments,
)
from polyformers.errors import CheckpointError
from polyformers.trainer_utils import get_last_checkpoint

from conftest import StopAt, sentiment_rows, tiny_bert_config
from conftest import logged_losses as losses


def make_model(tokenizer, seed: int = 0, dropout: float = 0.0, cls=BertForSequenceClassification, **kwargs):
    torch.manual_seed(seed)
    return cls(tiny_bert_config(tokenizer.vocab_size, dropout=dropout, **kwargs))


def args_for(tmp_path, **kwargs) -> TrainingArguments:
    defaults = dict(per_device_train_batch_size=4, learning_rate=1e-3, logging_steps=1, save_strategy="no", disable_tqdm=True, report_to="none")
    return TrainingArguments(str(tmp_path), **{**defaults, **kwargs})


def accuracy(prediction) -> dict:
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


# --- parity with Transformers' Trainer ---------------------------------------------------------


def test_matches_transformers_trainer(tmp_path, tokenizer, minilm_dir):
    """One batch per epoch (so both samplers give the same set): the same losses, gradient norms,
    learning rates (warmup + linear decay), clipping and weight-decay groups as Transformers 5."""
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    rows = sentiment_rows(tokenizer, n=8)
    model = make_model(tokenizer)
    model.save_pretrained(tmp_path / "init")
    settings = dict(
        per_device_train_batch_size=8, num_train_epochs=6, learning_rate=2e-3, warmup_steps=2, weight_decay=0.1,
        max_grad_norm=0.5, logging_steps=1, save_strategy="no", report_to="none", optim="adamw_torch", seed=7,
    )
    ours = Trainer(model, TrainingArguments(str(tmp_path / "ours"), disable_tqdm=True, **settings), train_dataset=rows, processing_class=tokenizer)
    ours.train()

    hf_model = transformers.BertForSequenceClassification.from_pretrained(tmp_path / "init")
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_dir)
    theirs = transformers.Trainer(
        hf_model, transformers.TrainingArguments(str(tmp_path / "theirs"), disable_tqdm=True, use_cpu=True, **settings),
        train_dataset=rows, processing_class=hf_tokenizer,
    )
    theirs.train()

    ours_logs = [h for h in ours.state.log_history if "loss" in h]
    their_logs = [h for h in theirs.state.log_history if "loss" in h]
    assert [h["step"] for h in ours_logs] == [h["step"] for h in their_logs] == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose([h["loss"] for h in ours_logs], [h["loss"] for h in their_logs], atol=1e-5)
    np.testing.assert_allclose([h["grad_norm"] for h in ours_logs], [float(h["grad_norm"]) for h in their_logs], rtol=1e-4)
    np.testing.assert_allclose([h["learning_rate"] for h in ours_logs], [h["learning_rate"] for h in their_logs], rtol=1e-12)
    theirs_state = hf_model.state_dict()
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, theirs_state[name], atol=2e-5, rtol=0, msg=name)


# --- resume, accumulation, checkpoints -----------------------------------------------------------


def test_resume_reproduces_uninterrupted_losses(tmp_path, tokenizer):
    """Dropout on, accumulation over 2 batches, 3 epochs: the resumed run's losses equal the
    uninterrupted run's exactly, and so do the final weights."""
    rows = sentiment_rows(tokenizer, n=22)  # 6 batches per epoch: the last one short
    kwargs = dict(per_device_train_batch_size=4, gradient_accumulation_steps=2, num_train_epochs=3, save_strategy="steps", save_steps=2, warmup_steps=2, seed=3)

    full = Trainer(make_model(tokenizer, dropout=0.1), args_for(tmp_path / "full", **kwargs), train_dataset=rows, processing_class=tokenizer)
    full.train()

    interrupted = Trainer(make_model(tokenizer, dropout=0.1), args_for(tmp_path / "cut", **kwargs), train_dataset=rows, processing_class=tokenizer, callbacks=[StopAt(4)])
    with pytest.raises(KeyboardInterrupt):
        interrupted.train()
    assert get_last_checkpoint(tmp_path / "cut").endswith("checkpoint-4")

    # A fresh process would build a fresh model: a different seed proves the weights come from the checkpoint.
    resumed = Trainer(make_model(tokenizer, seed=99, dropout=0.1), args_for(tmp_path / "cut", **kwargs), train_dataset=rows, processing_class=tokenizer)
    resumed.train(resume_from_checkpoint=True)
    assert losses(resumed) == losses(full)  # exact: the log history up to step 4 comes from the checkpoint
    assert resumed.state.global_step == full.state.global_step == 9
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_gradient_accumulation_equals_a_larger_batch(tmp_path, tokenizer):
    rows = sentiment_rows(tokenizer, n=16)
    big = Trainer(make_model(tokenizer), args_for(tmp_path / "a", per_device_train_batch_size=8, max_steps=4), train_dataset=rows, processing_class=tokenizer)
    small = Trainer(make_model(tokenizer), args_for(tmp_path / "b", per_device_train_batch_size=4, gradient_accumulation_steps=2, max_steps=4), train_dataset=rows, processing_class=tokenizer)
    big.train()
    small.train()
    # Padding differs per micro-batch, so not bitwise; the losses and updates agree.
    np.testing.assert_allclose(losses(big), losses(small), atol=1e-5)
    for (name, a), b in zip(big.model.state_dict().items(), small.model.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0, msg=name)


def test_checkpoint_contents_and_save_total_limit(tmp_path, tokenizer):
    rows = sentiment_rows(tokenizer, n=16)
    trainer = Trainer(make_model(tokenizer), args_for(tmp_path, max_steps=6, save_strategy="steps", save_steps=2, save_total_limit=2), train_dataset=rows, processing_class=tokenizer)
    trainer.train()
    assert sorted(os.listdir(tmp_path)) == ["checkpoint-4", "checkpoint-6"]
    files = set(os.listdir(tmp_path / "checkpoint-6"))
    assert {"model.safetensors", "config.json", "optimizer.pt", "scheduler.pt", "rng_state.json", "trainer_state.json", "training_args.json", "tokenizer.json"} <= files
    state = json.loads((tmp_path / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6 and state["max_steps"] == 6
    # Optimizer and scheduler states read back with weights_only=True (no code in them).
    torch.load(tmp_path / "checkpoint-6" / "optimizer.pt", weights_only=True)
    torch.load(tmp_path / "checkpoint-6" / "scheduler.pt", weights_only=True)
    # The model in a checkpoint loads with from_pretrained.
    reloaded = BertForSequenceClassification.from_pretrained(tmp_path / "checkpoint-6")
    torch.testing.assert_close(reloaded.classifier.weight, trainer.model.classifier.weight)


def test_interrupted_save_is_never_resumed(tmp_path, tokenizer):
    """A ``tmp-checkpoint-*`` folder (a save cut short) is ignored: resume takes the last complete one."""
    rows = sentiment_rows(tokenizer, n=8)
    trainer = Trainer(make_model(tokenizer), args_for(tmp_path, max_steps=2, save_strategy="steps", save_steps=2), train_dataset=rows, processing_class=tokenizer)
    trainer.train()
    (tmp_path / "tmp-checkpoint-4").mkdir()
    (tmp_path / "tmp-checkpoint-4" / "trainer_state.json").write_text("{")
    assert get_last_checkpoint(tmp_path).endswith("checkpoint-2")


def test_load_best_model_at_end_keeps_and_loads_the_best(tmp_path, tokenizer):
    rows = sentiment_rows(tokenizer, n=16)

    class Scores:
        """A metric that peaks at the second evaluation (step 4)."""

        values = iter([0.2, 0.9, 0.5, 0.4])

        def __call__(self, prediction):
            return {"score": next(self.values)}

    trainer = Trainer(
        make_model(tokenizer),
        args_for(tmp_path, max_steps=8, eval_strategy="steps", eval_steps=2, save_strategy="steps", save_steps=2, save_total_limit=1,
                 load_best_model_at_end=True, metric_for_best_model="score"),
        train_dataset=rows, eval_dataset=rows[:8], processing_class=tokenizer, compute_metrics=Scores(),
    )
    trainer.train()
    assert trainer.state.best_metric == 0.9
    assert trainer.state.best_model_checkpoint.endswith("checkpoint-4")
    assert sorted(os.listdir(tmp_path)) == ["checkpoint-4", "checkpoint-8"]  # the best, and the latest
    best = BertForSequenceClassification.from_pretrained(tmp_path / "checkpoint-4")
    torch.testing.assert_close(trainer.model.classifier.weight, best.classifier.weight)


def test_early_stopping(tmp_path, tokenizer):
    rows = sentiment_rows(tokenizer, n=16)

    def flat(prediction):
        return {"score": 0.5}

    trainer = Trainer(
        make_model(tokenizer),
        args_for(tmp_path, max_steps=40, eval_strategy="steps", eval_steps=2, metric_for_best_model="score"),
        train_dataset=rows, eval_dataset=rows[:4], processing_class=tokenizer, compute_metrics=flat,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=2)],
    )
    trainer.train()
    assert trainer.state.global_step == 6  # best at step 2, no improvement at 4 and 6


# --- data and evaluation -------------------------------------------------------------------------


def test_datasets_library_objects_and_unused_columns(tmp_path, tokenizer):
    datasets = pytest.importorskip("datasets")
    rows = sentiment_rows(tokenizer, n=16)
    table = datasets.Dataset.from_list(rows)  # has a "text" column the model does not take
    trainer = Trainer(make_model(tokenizer), args_for(tmp_path, max_steps=4), train_dataset=table, eval_dataset=table, processing_class=tokenizer, compute_metrics=accuracy)
    trainer.train()
    metrics = trainer.evaluate()
    assert {"eval_loss", "eval_accuracy", "eval_runtime"} <= set(metrics)
    # Same run from a plain list of dicts and from a dict of columns: same losses.
    from_list = Trainer(make_model(tokenizer), args_for(tmp_path / "l", max_steps=4), train_dataset=rows, processing_class=tokenizer)
    from_list.train()
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    from_columns = Trainer(make_model(tokenizer), args_for(tmp_path / "c", max_steps=4), train_dataset=columns, processing_class=tokenizer)
    from_columns.train()
    assert losses(trainer) == losses(from_list) == losses(from_columns)


def test_torch_datasets_map_style_and_iterable(tmp_path, tokenizer):
    rows = sentiment_rows(tokenizer, n=16)

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return len(rows)

        def __getitem__(self, i):
            return rows[i]

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(rows)

    mapped = Trainer(make_model(tokenizer), args_for(tmp_path / "m", max_steps=4), train_dataset=Rows(), processing_class=tokenizer)
    mapped.train()
    from_list = Trainer(make_model(tokenizer), args_for(tmp_path / "l", max_steps=4), train_dataset=rows, processing_class=tokenizer)
    from_list.train()
    assert losses(mapped) == losses(from_list)
    streamed = Trainer(make_model(tokenizer), args_for(tmp_path / "s", max_steps=6), train_dataset=Stream(), processing_class=tokenizer)
    assert streamed.train().global_step == 6  # 4 batches per pass: the stream is read again
    with pytest.raises(ValueError, match="set TrainingArguments\\(max_steps=...\\)"):
        Trainer(make_model(tokenizer), args_for(tmp_path / "x"), train_dataset=Stream(), processing_class=tokenizer).train()


def test_token_classification_predict_pads_with_minus_100(tmp_path, tokenizer):
    rows = []
    for i in range(10):
        encoding = tokenizer(["word"] * (2 + i % 4), is_split_into_words=True)
        rows.append({**encoding, "labels": [-100] + [i % 3] * (len(encoding["input_ids"]) - 2) + [-100]})
    model = make_model(tokenizer, cls=BertForTokenClassification, num_labels=3)
    trainer = Trainer(model, args_for(tmp_path, max_steps=3, per_device_eval_batch_size=4), train_dataset=rows, data_collator=DataCollatorForTokenClassification(tokenizer))
    trainer.train()
    output = trainer.predict(rows)
    assert output.predictions.shape == (10, 7, 3)  # padded to the longest batch
    assert output.label_ids.shape == (10, 7)
    assert (output.label_ids[0, 4:] == -100).all()
    assert "test_loss" in output.metrics


def test_bf16_and_gradient_checkpointing(tmp_path, tokenizer):
    rows = sentiment_rows(tokenizer, n=8)
    plain = Trainer(make_model(tokenizer), args_for(tmp_path / "p", max_steps=2), train_dataset=rows, processing_class=tokenizer)
    checkpointed = Trainer(make_model(tokenizer), args_for(tmp_path / "g", max_steps=2, gradient_checkpointing=True), train_dataset=rows, processing_class=tokenizer)
    plain.train()
    checkpointed.train()
    np.testing.assert_allclose(losses(plain), losses(checkpointed), atol=1e-6)
    bf16 = Trainer(make_model(tokenizer), args_for(tmp_path / "b", max_steps=2, bf16=True), train_dataset=rows, processing_class=tokenizer)
    bf16.train()
    np.testing.assert_allclose(losses(bf16), losses(plain), atol=3e-2)


# --- errors --------------------------------------------------------------------------------------


def test_dataset_without_labels(tmp_path, tokenizer):
    rows = [{k: v for k, v in r.items() if k != "label"} for r in sentiment_rows(tokenizer, n=8)]
    trainer = Trainer(make_model(tokenizer), args_for(tmp_path, max_steps=1), train_dataset=rows, processing_class=tokenizer)
    with pytest.raises(ValueError, match="returned no loss.*no labels for this head.*'labels'"):
        trainer.train()


def test_labels_beyond_num_labels(tmp_path, tokenizer):
    rows = [dict(r, label=3) for r in sentiment_rows(tokenizer, n=8)]
    trainer = Trainer(make_model(tokenizer), args_for(tmp_path, max_steps=1), train_dataset=rows, processing_class=tokenizer)
    with pytest.raises(ValueError, match=r"labels run from 3 to 3.*num_labels=2.*num_labels=N"):
        trainer.train()


def test_empty_dataset(tmp_path, tokenizer):
    with pytest.raises(ValueError, match="train_dataset is empty"):
        Trainer(make_model(tokenizer), args_for(tmp_path), train_dataset=[], processing_class=tokenizer)


def test_resume_from_missing_checkpoint(tmp_path, tokenizer):
    trainer = Trainer(make_model(tokenizer), args_for(tmp_path, max_steps=1), train_dataset=sentiment_rows(tokenizer, n=4), processing_class=tokenizer)
    with pytest.raises(CheckpointError, match="does not exist"):
        trainer.train(resume_from_checkpoint=str(tmp_path / "nowhere"))
    with pytest.raises(CheckpointError, match="holds no checkpoint-<step> folder"):
        trainer.train(resume_from_checkpoint=True)


def test_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="'sometimes' is not a valid IntervalStrategy"):
        TrainingArguments(str(tmp_path), eval_strategy="sometimes")
    with pytest.raises(ValueError, match="eval_strategy .* and save_strategy .* must match"):
        TrainingArguments(str(tmp_path), load_best_model_at_end=True, eval_strategy="epoch", save_strategy="steps")
    with pytest.raises(ValueError, match="per_device_train_batch_size must be a positive integer"):
        TrainingArguments(str(tmp_path), per_device_train_batch_size=0)
    # The 4.x spelling still works.
    assert TrainingArguments(str(tmp_path), evaluation_strategy="epoch").eval_strategy == "epoch"
