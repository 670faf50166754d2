"""The Flax training loop of ``polyformers.training_flax`` on a tiny random BERT.

Losses and a one-step SGD update are compared with our PyTorch BERT loaded from the Flax
checkpoint (so with the same weights); dropout is off there. Compiling a train step costs
seconds on CPU (far more with dropout on), so tests share configs and shapes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
torch = pytest.importorskip("torch")

import jax.numpy as jnp  # noqa: E402

from polyformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    BertForTokenClassification,
    FlaxBertForSequenceClassification,
    FlaxBertForTokenClassification,
)
from polyformers.errors import CheckpointError  # noqa: E402
from polyformers.training_flax import (  # noqa: E402
    FlaxTrainState,
    adamw_with_decay_mask,
    batches,
    compute_loss,
    create_learning_rate_fn,
    cross_entropy_loss,
    decay_mask,
    make_eval_step,
    make_train_step,
    restore_train_state,
    save_train_state,
)

BATCH, LENGTH = 4, 8


def tiny_config(**overrides) -> BertConfig:
    settings = dict(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
        max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=3,
    )  # fmt: skip
    settings.update(overrides)
    return BertConfig(**settings)


def inputs(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    attention_mask = np.ones((BATCH, LENGTH), dtype=np.int64)
    attention_mask[1, 5:] = 0  # one padded row
    attention_mask[3, 6:] = 0
    return {"input_ids": rng.integers(1, 100, (BATCH, LENGTH)), "attention_mask": attention_mask}


def sequence_batch(seed: int = 0) -> dict[str, np.ndarray]:
    return {**inputs(seed), "labels": np.random.default_rng(seed + 100).integers(0, 3, (BATCH,))}


def token_batch(seed: int = 0) -> dict[str, np.ndarray]:
    batch = inputs(seed)
    labels = np.random.default_rng(seed + 100).integers(0, 3, (BATCH, LENGTH))
    labels[batch["attention_mask"] == 0] = -100
    labels[:, 0] = -100  # [CLS]
    return {**batch, "labels": labels}


def to_pytorch(model, tmp_path, pt_class, params=None):
    directory = tmp_path / f"pt-{pt_class.__name__}-{id(params)}"
    model.save_pretrained(directory, params=params, safe_serialization=True)
    return pt_class.from_pretrained(directory)


def pt_loss(pt_model, batch) -> float:
    with torch.no_grad():
        return pt_model(**{k: torch.as_tensor(v) for k, v in batch.items()}).loss.item()


@pytest.fixture(scope="module")
def sequence_model():
    return FlaxBertForSequenceClassification(tiny_config(), seed=0)


@pytest.fixture(scope="module")
def token_model():
    return FlaxBertForTokenClassification(tiny_config(), seed=1)


@pytest.fixture(scope="module")
def sgd():
    # One optimizer object for the module: the compiled step is keyed on it (a static field).
    return optax.sgd(0.5)


@pytest.fixture(scope="module")
def sgd_steps(sequence_model, token_model):
    return {"sequence": make_train_step(sequence_model), "token": make_train_step(token_model)}


# --- losses agree with the PyTorch heads -----------------------------------------------------------


def test_sequence_classification_losses_match_pytorch(tmp_path, sequence_model):
    pt_model = to_pytorch(sequence_model, tmp_path, BertForSequenceClassification)
    rng = np.random.default_rng(1)
    outputs = sequence_model(inputs()["input_ids"], attention_mask=inputs()["attention_mask"])

    single = {**inputs(), "labels": rng.integers(0, 3, (BATCH,))}  # integer labels: single-label
    assert abs(float(compute_loss(outputs, single, sequence_model.config)) - pt_loss(pt_model, single)) < 1e-5

    multi = {**inputs(), "labels": (rng.random((BATCH, 3)) > 0.5).astype(np.float32)}
    pt_model.config.problem_type = "multi_label_classification"
    config = tiny_config(problem_type="multi_label_classification")
    assert abs(float(compute_loss(outputs, multi, config)) - pt_loss(pt_model, multi)) < 1e-5


def test_regression_loss_matches_pytorch(tmp_path):
    model = FlaxBertForSequenceClassification(tiny_config(num_labels=1), seed=0)
    batch = {**inputs(), "labels": np.random.default_rng(1).normal(size=(BATCH,)).astype(np.float32)}
    outputs = model(batch["input_ids"], attention_mask=batch["attention_mask"])
    expected = pt_loss(to_pytorch(model, tmp_path, BertForSequenceClassification), batch)
    assert abs(float(compute_loss(outputs, batch, model.config)) - expected) < 1e-5


def test_token_classification_loss_matches_pytorch_and_ignores_minus_100(tmp_path, token_model, sgd):
    batch = token_batch()
    evaluated = make_eval_step(token_model)(FlaxTrainState.create(token_model, sgd), batch)
    expected = pt_loss(to_pytorch(token_model, tmp_path, BertForTokenClassification), batch)
    assert abs(float(evaluated["loss"]) - expected) < 1e-5, (float(evaluated["loss"]), expected)

    # Ignored positions do not count, whatever their logits; all ignored gives 0, not NaN.
    logits = evaluated["logits"]
    assert logits.shape == (BATCH, LENGTH, 3)
    changed = logits.at[:, 0].add(100.0)
    assert float(cross_entropy_loss(changed, batch["labels"])) == pytest.approx(float(evaluated["loss"]), abs=1e-6)
    assert float(cross_entropy_loss(logits, np.full((BATCH, LENGTH), -100))) == 0.0


def test_compute_loss_prefers_the_models_own_loss_and_rejects_unknown_outputs():
    from polyformers.modeling_outputs import BaseModelOutput, SequenceClassifierOutput

    own = SequenceClassifierOutput(loss=jnp.asarray(1.5), logits=jnp.zeros((2, 3)))
    assert float(compute_loss(own, {"labels": np.array([0, 1])}, tiny_config())) == 1.5
    with pytest.raises(TypeError, match="loss_fn="):
        compute_loss(BaseModelOutput(last_hidden_state=jnp.zeros((2, 3, 4))), {"labels": np.zeros(2)}, tiny_config())
    with pytest.raises(ValueError, match="no labels"):
        compute_loss(SequenceClassifierOutput(logits=jnp.zeros((2, 3))), {"input_ids": np.zeros((2, 3))}, tiny_config())


# --- training steps --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "task, pt_class, make_batch",
    [("sequence", BertForSequenceClassification, sequence_batch), ("token", BertForTokenClassification, token_batch)],
)
def test_one_sgd_step_equals_pytorch(tmp_path, sequence_model, token_model, sgd, sgd_steps, task, pt_class, make_batch):
    model = sequence_model if task == "sequence" else token_model
    pt_model = to_pytorch(model, tmp_path, pt_class)
    batch = make_batch(3)

    state, metrics = sgd_steps[task](FlaxTrainState.create(model, sgd), batch)

    pt_model.train()
    optimizer = torch.optim.SGD(pt_model.parameters(), lr=0.5)
    loss = pt_model(**{k: torch.as_tensor(v) for k, v in batch.items()}).loss
    loss.backward()
    optimizer.step()

    assert abs(float(metrics["loss"]) - loss.item()) < 1e-5
    stepped = to_pytorch(model, tmp_path, pt_class, params=state.params).state_dict()
    worst = max((stepped[name] - value).abs().max().item() for name, value in pt_model.state_dict().items())
    assert worst < 1e-5, worst


def test_gradient_accumulation_with_multisteps_equals_one_large_batch(sequence_model, sgd, sgd_steps):
    # Two half batches accumulated by optax.MultiSteps == one step on the whole batch (the loss
    # is a mean over examples, and the halves are equal in size).
    batch = sequence_batch(5)
    halves = [{k: v[:2] for k, v in batch.items()}, {k: v[2:] for k, v in batch.items()}]
    whole, _ = sgd_steps["sequence"](FlaxTrainState.create(sequence_model, sgd), batch)

    accumulated = FlaxTrainState.create(sequence_model, optax.MultiSteps(sgd, every_k_schedule=2))
    accumulated, _ = sgd_steps["sequence"](accumulated, halves[0])
    np.testing.assert_array_equal(  # nothing applied yet
        accumulated.params["classifier"]["bias"], sequence_model.params["classifier"]["bias"]
    )
    accumulated, _ = sgd_steps["sequence"](accumulated, halves[1])
    for a, b in zip(jax.tree_util.tree_leaves(accumulated.params), jax.tree_util.tree_leaves(whole.params)):
        np.testing.assert_allclose(a, b, atol=1e-6)


class AdamWRun:
    """A model with dropout in its classifier only (so the dropout key matters, yet the step
    compiles fast: each dropout site costs seconds of CPU compilation), AdamW with warmup and
    linear decay, and its compiled step, shared by the tests that train for several steps."""

    def __init__(self) -> None:
        self.model = FlaxBertForSequenceClassification(tiny_config(classifier_dropout=0.3), seed=3)
        self.schedule = create_learning_rate_fn(train_ds_size=40, batch_size=BATCH, epochs=1, warmup_steps=2, learning_rate=1e-2)
        self.tx = adamw_with_decay_mask(self.schedule, weight_decay=0.01)
        self.train_step = make_train_step(self.model, learning_rate_fn=self.schedule)

    def start(self, seed: int = 7) -> FlaxTrainState:
        return FlaxTrainState.create(self.model, self.tx, seed=seed)

    @staticmethod
    def batch(seed: int) -> dict[str, np.ndarray]:
        batch = sequence_batch(seed)
        batch["label"] = batch.pop("labels")  # the datasets column name is read as "labels"
        return batch


@pytest.fixture(scope="module")
def adamw_run():
    return AdamWRun()


def test_train_steps_lower_the_loss_and_report_metrics(adamw_run):
    state = adamw_run.start()
    batch = adamw_run.batch(0)
    losses, rates = [], []
    for _ in range(6):
        state, metrics = adamw_run.train_step(state, batch)
        losses.append(float(metrics["loss"]))
        rates.append(float(metrics["learning_rate"]))
        assert float(metrics["grad_norm"]) > 0
    assert losses[-1] < losses[0] - 0.1, losses
    assert int(state.step) == 6
    np.testing.assert_allclose(rates, [0.0, 5e-3, 1e-2, 1e-2 * 7 / 8, 1e-2 * 6 / 8, 1e-2 * 5 / 8], rtol=1e-6)
    # The model's own parameters survive the donated training state.
    assert adamw_run.model(batch["input_ids"]).logits.shape == (BATCH, 3)


def test_decay_mask_leaves_biases_and_layernorm_scales_alone(sequence_model):
    mask = decay_mask(sequence_model.params)
    assert mask["classifier"]["kernel"] is True and mask["classifier"]["bias"] is False
    assert mask["bert"]["embeddings"]["LayerNorm"]["scale"] is False
    assert mask["bert"]["embeddings"]["word_embeddings"]["embedding"] is True


def test_batch_keys_the_model_does_not_take_are_rejected(sequence_model, sgd):
    state = FlaxTrainState.create(sequence_model, optax.sgd(0.1))
    with pytest.raises(ValueError, match=r"does not take: \['text'\]"):
        make_eval_step(sequence_model)(state, {**sequence_batch(), "text": np.zeros((BATCH,))})


# --- checkpoints -----------------------------------------------------------------------------------


def test_save_and_restore_continue_identically(tmp_path, adamw_run):
    data = [adamw_run.batch(seed) for seed in range(4)]
    state = adamw_run.start()
    uninterrupted = []
    for batch in data:
        state, metrics = adamw_run.train_step(state, batch)
        uninterrupted.append(float(metrics["loss"]))

    state = adamw_run.start()
    for batch in data[:2]:
        state, _ = adamw_run.train_step(state, batch)
    directory = save_train_state(state, tmp_path / "checkpoint", model=adamw_run.model)
    assert json.loads((tmp_path / "checkpoint" / "train_state.json").read_text()) == {"step": 2}

    # A template with other weights and another dropout key: everything comes from the file.
    template = adamw_run.start(seed=0)
    template = template.replace(params=jax.tree_util.tree_map(lambda p: p + 1.0, template.params))
    restored = restore_train_state(directory, template)
    assert int(restored.step) == 2
    resumed = []
    for batch in data[2:]:
        restored, metrics = adamw_run.train_step(restored, batch)
        resumed.append(float(metrics["loss"]))
    assert resumed == uninterrupted[2:]

    # The weights saved beside the state load in PyTorch.
    pt_model = BertForSequenceClassification.from_pretrained(directory)
    assert pt_model.classifier.weight.shape == (3, 32)


def test_saving_again_replaces_the_checkpoint_and_a_failed_save_keeps_the_old_one(tmp_path, sequence_model):
    tx = optax.adam(1e-3)
    state = FlaxTrainState.create(sequence_model, tx)
    directory = tmp_path / "checkpoint"
    save_train_state(state, directory)
    save_train_state(state.replace(step=jnp.asarray(5, jnp.int32)), directory)
    assert int(restore_train_state(directory, state).step) == 5

    class Unsavable:
        def save_pretrained(self, *args, **kwargs):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_train_state(state, directory, model=Unsavable())
    assert int(restore_train_state(directory, state).step) == 5
    assert sorted(os.listdir(tmp_path)) == ["checkpoint"]  # no staging directory left behind


def test_restore_errors_name_the_file_and_the_difference(tmp_path, sequence_model):
    state = FlaxTrainState.create(sequence_model, optax.adam(1e-3))
    with pytest.raises(CheckpointError, match="does not exist"):
        restore_train_state(tmp_path / "nowhere", state)

    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="train_state.msgpack' is missing"):
        restore_train_state(tmp_path / "empty", state)

    directory = save_train_state(state, tmp_path / "checkpoint")
    path = os.path.join(directory, "train_state.msgpack")

    # Another optimizer: adam's moments are in the file, not in an SGD template.
    with pytest.raises(CheckpointError, match=r"train_state\.msgpack' does not match .*arrays of the file are not in the template"):
        restore_train_state(directory, FlaxTrainState.create(sequence_model, optax.sgd(0.1)))

    # Another head size: shapes differ.
    other = FlaxBertForSequenceClassification(tiny_config(num_labels=5), seed=0)
    with pytest.raises(CheckpointError, match=r"classifier/bias \(file float32\[3\], template float32\[5\]\)"):
        restore_train_state(directory, FlaxTrainState.create(other, optax.adam(1e-3)))

    # A truncated file.
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"Cannot read .*train_state\.msgpack.*truncated or corrupt"):
        restore_train_state(directory, state)


def test_interrupted_overwrite_points_to_the_previous_checkpoint(tmp_path):
    (tmp_path / ".checkpoint.old-abc123").mkdir()  # what a crash between the two renames leaves
    with pytest.raises(CheckpointError, match=r"previous checkpoint at .*\.checkpoint\.old-abc123"):
        restore_train_state(tmp_path / "checkpoint", None)


# --- batches ---------------------------------------------------------------------------------------


def test_batches_of_lists_columns_and_datasets():
    rows = [{"input_ids": [i, i + 1], "label": i % 2} for i in range(5)]
    listed = list(batches(rows, 2))
    assert [b["input_ids"].shape for b in listed] == [(2, 2), (2, 2), (1, 2)]
    assert listed[0]["label"].tolist() == [0, 1]
    assert len(list(batches(rows, 2, drop_last=True))) == 2

    columns = {"input_ids": [r["input_ids"] for r in rows], "label": [r["label"] for r in rows]}
    shuffled = [b["label"].tolist() for b in batches(columns, 5, shuffle=True, seed=1)]
    again = [b["label"].tolist() for b in batches(columns, 5, shuffle=True, seed=1)]
    assert shuffled == again and sorted(shuffled[0]) == [0, 0, 0, 1, 1]
    assert [b["input_ids"].tolist() for b in batches(columns, 5, shuffle=True, seed=1)] != [[r["input_ids"] for r in rows]]

    datasets = pytest.importorskip("datasets")
    dataset = datasets.Dataset.from_list(rows)
    assert [b["label"].tolist() for b in batches(dataset, 3)] == [[0, 1, 0], [1, 0]]

    ragged = [{"input_ids": [1, 2, 3]}, {"input_ids": [1]}]
    with pytest.raises(ValueError, match="DataCollatorWithPadding"):
        list(batches(ragged, 2))
    with pytest.raises(ValueError, match="different lengths"):
        list(batches({"a": [1, 2], "b": [1]}, 2))


def test_batches_pad_with_the_data_collator(tmp_path):
    from polyformers.data.data_collator import DataCollatorWithPadding
    from polyformers_bert.tokenization_bert_fast import BertTokenizerFast

    vocab_file = tmp_path / "vocab.txt"
    vocab_file.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film"]) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab_file))
    rows = [{**tokenizer(text), "label": label} for text, label in [("good film", 1), ("bad", 0), ("film", 1)]]
    batch = next(batches(rows, 3, DataCollatorWithPadding(tokenizer, return_tensors="np")))
    assert batch["input_ids"].tolist() == [[2, 5, 7, 3], [2, 6, 3, 0], [2, 7, 3, 0]]
    assert batch["labels"].tolist() == [1, 0, 1]


# --- data parallelism ------------------------------------------------------------------------------

_DATA_PARALLEL_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np, optax
    from polyformers import FlaxBertForTokenClassification
    from polyformers.training_flax import FlaxTrainState, data_parallel_mesh, make_train_step, replicate, shard_batch

    assert jax.device_count() == 2, jax.devices()
    model_dir, data_file, out_dir = sys.argv[1:]
    model = FlaxBertForTokenClassification.from_pretrained(model_dir)
    data = [dict(np.load(data_file.format(i))) for i in range(3)]
    mesh = data_parallel_mesh()
    state = replicate(FlaxTrainState.create(model, optax.sgd(0.5)), mesh)
    train_step = make_train_step(model)
    losses = []
    for batch in data:
        sharded = shard_batch(batch, mesh)
        assert len(sharded["input_ids"].sharding.device_set) == 2
        state, metrics = train_step(state, sharded)
        losses.append(float(metrics["loss"]))
    assert len(state.params["classifier"]["kernel"].sharding.device_set) == 2  # replicated
    model.save_pretrained(out_dir, params=state.params)
    try:
        shard_batch({"input_ids": np.zeros((3, 8))}, mesh)
    except ValueError as exc:
        assert "split evenly over 2 devices" in str(exc), exc
    else:
        raise AssertionError("an odd batch was split over 2 devices")
    print(json.dumps(losses))
    """
)


@pytest.mark.slow
def test_data_parallel_training_on_two_devices_equals_one_device(tmp_path, token_model, sgd, sgd_steps):
    # Two host devices in a subprocess (XLA_FLAGS must be set before JAX starts); one device here,
    # with the step compiled by the tests above.
    data = [token_batch(seed) for seed in (10, 11, 12)]
    for i, batch in enumerate(data):
        np.savez(tmp_path / f"batch-{i}.npz", **batch)
    token_model.save_pretrained(tmp_path / "model")
    script = tmp_path / "data_parallel.py"
    script.write_text(_DATA_PARALLEL_SCRIPT)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, str(script), str(tmp_path / "model"), str(tmp_path / "batch-{}.npz"), str(tmp_path / "trained")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    two_device_losses = json.loads(result.stdout.strip().splitlines()[-1])

    state, losses = FlaxTrainState.create(token_model, sgd), []
    for batch in data:
        state, metrics = sgd_steps["token"](state, batch)
        losses.append(float(metrics["loss"]))
    np.testing.assert_allclose(two_device_losses, losses, atol=1e-5)
    trained = FlaxBertForTokenClassification.from_pretrained(tmp_path / "trained").params
    for a, b in zip(jax.tree_util.tree_leaves(trained), jax.tree_util.tree_leaves(state.params)):
        np.testing.assert_allclose(a, b, atol=1e-5)
