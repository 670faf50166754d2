"""Fine-tuning TensorFlow models with Keras: ``prepare_tf_dataset``, ``fit`` on the model's own loss,
``create_optimizer`` (Transformers 4.46.3's schedule and weight decay) and ``tf.distribute``.

Models are tiny random BERTs; the tokenizer is a BertTokenizerFast on a vocabulary of a few dozen
words, so the whole file runs in well under a minute.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
datasets = pytest.importorskip("datasets")

import polyformers  # noqa: E402
from polyformers import DataCollatorForTokenClassification, create_optimizer  # noqa: E402
from polyformers.optimization_tf import AdamWeightDecay, WarmUp  # noqa: E402
from polyformers_bert.configuration_bert import BertConfig  # noqa: E402
from polyformers_bert.tokenization_bert_fast import BertTokenizerFast  # noqa: E402

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
POSITIVE = ["good", "great", "lovely", "superb"]
NEGATIVE = ["bad", "awful", "dull", "poor"]
SUBJECTS = ["the", "film", "food", "service", "show", "book", "was", "is", "really", "quite"]
NAMES = ["alice", "bob", "carol"]
VOCAB = SPECIAL + POSITIVE + NEGATIVE + SUBJECTS + NAMES + ["met", "saw", "and", "."]

TINY = dict(
    vocab_size=100,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=37,
    max_position_embeddings=64,
    hidden_dropout_prob=0.0,  # no dropout: the numeric comparisons below need determinism
    attention_probs_dropout_prob=0.0,
)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> BertTokenizerFast:
    vocab = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    vocab.write_text("".join(t + "\n" for t in VOCAB), encoding="utf-8")
    return BertTokenizerFast(vocab_file=str(vocab))


def sentiment_rows(n: int, seed: int = 0) -> list[dict]:
    """``{"text", "label"}`` rows whose label is given by one opinion word: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = [str(rng.choice(SUBJECTS[:6])), str(rng.choice(SUBJECTS[6:])), str(rng.choice(POSITIVE if label else NEGATIVE))]
        rows.append({"text": " ".join(words if rng.random() < 0.7 else words[:1] + words[2:]), "label": label})
    return rows


def encoded_rows(tokenizer: BertTokenizerFast, n: int, seed: int = 0) -> list[dict]:
    return [{**tokenizer(row["text"]), **row} for row in sentiment_rows(n, seed)]


def sequence_model(num_labels: int = 2, seed: int = 0) -> "polyformers.TFBertForSequenceClassification":
    keras.utils.set_random_seed(seed)
    model = polyformers.TFBertForSequenceClassification(BertConfig(**TINY, num_labels=num_labels))
    model.build_in_name_scope()
    return model


# --- prepare_tf_dataset --------------------------------------------------------------------------


def test_prepare_from_hf_dataset_drops_columns_pads_per_batch_and_renames_label(tokenizer: BertTokenizerFast) -> None:
    rows = encoded_rows(tokenizer, 10)
    dataset = datasets.Dataset.from_list(rows)  # columns: input_ids, token_type_ids, attention_mask, text, label
    model = sequence_model()
    tf_dataset = model.prepare_tf_dataset(dataset, batch_size=4, shuffle=False, tokenizer=tokenizer)

    inputs_spec, labels_spec = tf_dataset.element_spec
    assert sorted(inputs_spec) == ["attention_mask", "input_ids", "token_type_ids"]  # "text" dropped
    assert inputs_spec["input_ids"].shape.as_list() == [None, None] and labels_spec.shape.as_list() == [None]
    assert len(tf_dataset) == 3  # 4 + 4 + 2, the remainder kept since shuffle=False

    batches = list(tf_dataset.as_numpy_iterator())
    assert [b[0]["input_ids"].shape[0] for b in batches] == [4, 4, 2]
    for start, (inputs, labels) in zip(range(0, 10, 4), batches):
        chunk = rows[start : start + 4]
        longest = max(len(r["input_ids"]) for r in chunk)
        assert inputs["input_ids"].shape == (len(chunk), longest)  # padded per batch, not globally
        for row, ids, mask in zip(chunk, inputs["input_ids"], inputs["attention_mask"]):
            n = len(row["input_ids"])
            np.testing.assert_array_equal(ids, row["input_ids"] + [tokenizer.pad_token_id] * (longest - n))
            np.testing.assert_array_equal(mask, [1] * n + [0] * (longest - n))
        np.testing.assert_array_equal(labels, [r["label"] for r in chunk])


def test_list_of_dicts_and_dict_of_lists_give_the_same_batches(tokenizer: BertTokenizerFast) -> None:
    rows = [{k: v for k, v in row.items() if k != "text"} for row in encoded_rows(tokenizer, 7)]
    columns = {key: [row[key] for row in rows] for key in rows[0]}
    model = sequence_model()
    from_rows = list(model.prepare_tf_dataset(rows, batch_size=3, shuffle=False, tokenizer=tokenizer).as_numpy_iterator())
    from_columns = list(model.prepare_tf_dataset(columns, batch_size=3, shuffle=False, tokenizer=tokenizer).as_numpy_iterator())
    assert len(from_rows) == len(from_columns) == 3
    for (x1, y1), (x2, y2) in zip(from_rows, from_columns):
        assert x1.keys() == x2.keys()
        for key in x1:
            np.testing.assert_array_equal(x1[key], x2[key])
        np.testing.assert_array_equal(y1, y2)


def test_shuffle_reorders_each_epoch_and_drop_remainder_fixes_the_batch_dim(tokenizer: BertTokenizerFast) -> None:
    rows = [{"input_ids": [2, 5 + i, 3], "label": i % 2} for i in range(10)]
    model = sequence_model()
    tf_dataset = model.prepare_tf_dataset(rows, batch_size=4)  # shuffle=True -> drop_remainder=True
    assert len(tf_dataset) == 2 and tf_dataset.element_spec[0]["input_ids"].shape.as_list() == [4, None]
    np.random.seed(0)
    epochs = [np.concatenate([x["input_ids"][:, 1] for x, _ in tf_dataset.as_numpy_iterator()]) for _ in range(3)]
    assert all(len(set(e)) == 8 and set(e) <= set(range(5, 15)) for e in epochs)
    assert len({tuple(e) for e in epochs}) > 1  # a new order each epoch


def test_fit_lowers_the_loss_on_create_optimizer_schedule(tokenizer: BertTokenizerFast) -> None:
    model = sequence_model()
    rows = encoded_rows(tokenizer, 48)
    train = model.prepare_tf_dataset(rows, batch_size=8, tokenizer=tokenizer)
    optimizer, schedule = create_optimizer(init_lr=1e-2, num_train_steps=len(train) * 6, num_warmup_steps=2)
    model.compile(optimizer=optimizer, metrics=["accuracy"])
    history = model.fit(train, epochs=5, verbose=0).history
    assert history["loss"][-1] < 0.5 * history["loss"][0], history["loss"]
    assert history["accuracy"][-1] >= 0.9, history["accuracy"]
    # The optimiser stepped on the schedule: 6 batches per epoch (48 / 8), 5 epochs.
    assert int(optimizer.iterations) == 30
    assert float(optimizer.learning_rate) == pytest.approx(float(schedule(30))) == pytest.approx(1e-2 * 6 / 34)

    evaluation = model.prepare_tf_dataset(rows, batch_size=16, shuffle=False, tokenizer=tokenizer)
    logits = model.predict(evaluation, verbose=0).logits
    assert logits.shape == (48, 2) and (logits.argmax(-1) == [r["label"] for r in rows]).mean() >= 0.9


def test_fit_on_the_model_loss_equals_a_manual_gradient_tape_step(tokenizer: BertTokenizerFast) -> None:
    rows = encoded_rows(tokenizer, 6)
    model = sequence_model()
    reference = sequence_model()  # same seed, same weights
    tf_dataset = model.prepare_tf_dataset(rows, batch_size=6, shuffle=False, tokenizer=tokenizer)
    inputs, labels = next(iter(tf_dataset))

    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5), loss=None)
    history = model.fit(tf_dataset, epochs=1, verbose=0).history

    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(reference(inputs, labels=labels, training=True).loss)
    grads = tape.gradient(loss, reference.trainable_variables)
    for variable, grad in zip(reference.trainable_variables, grads):
        variable.assign_sub(0.5 * tf.convert_to_tensor(grad))

    assert history["loss"][0] == pytest.approx(float(loss), abs=1e-6)
    changed = 0
    for trained, manual, before in zip(model.trainable_variables, reference.trainable_variables, sequence_model().trainable_variables):
        np.testing.assert_allclose(trained.numpy(), manual.numpy(), atol=1e-5, err_msg=trained.path)
        changed += not np.allclose(trained.numpy(), before.numpy())
    assert changed > 10  # the step did move the weights


def test_token_classification_ignores_minus_100_labels(tokenizer: BertTokenizerFast) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(12):
        words = [str(rng.choice(NAMES)), "met", str(rng.choice(NAMES)), "and", "saw", "the", "show"][: int(rng.integers(3, 8))]
        encoding = tokenizer(words, is_split_into_words=True)
        labels = [-100 if w is None else int(words[w] in NAMES) for w in encoding.word_ids()]
        rows.append({**encoding, "labels": labels, "words": words})
    keras.utils.set_random_seed(0)
    model = polyformers.TFBertForTokenClassification(BertConfig(**TINY, num_labels=2))
    collator = DataCollatorForTokenClassification(tokenizer, return_tensors="np")
    tf_dataset = model.prepare_tf_dataset(rows, batch_size=12, shuffle=False, collate_fn=collator)
    inputs, labels = next(tf_dataset.as_numpy_iterator())
    assert labels.shape == inputs["input_ids"].shape and (labels == -100).sum() >= 24  # specials and padding

    # The loss fit reports for its first step (one batch per epoch: the loss before any update)
    # is the mean cross-entropy over labelled tokens only.
    logits = model(inputs).logits.numpy()
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    kept = labels != -100
    expected = -np.take_along_axis(log_probs, np.where(kept, labels, 0)[..., None], -1)[..., 0][kept].mean()
    model.compile(optimizer=keras.optimizers.Adam(2e-2))
    history = model.fit(tf_dataset, epochs=12, verbose=0).history
    assert history["loss"][0] == pytest.approx(expected, rel=1e-5)
    assert history["loss"][-1] < 0.2 * history["loss"][0], history["loss"]


def test_no_label_columns_warns_and_yields_inputs_alone(tokenizer: BertTokenizerFast, caplog: pytest.LogCaptureFixture) -> None:
    rows = [{"input_ids": row["input_ids"]} for row in encoded_rows(tokenizer, 4)]
    model = sequence_model()
    with caplog.at_level(logging.WARNING, logger="polyformers.modeling_tf_utils"):
        tf_dataset = model.prepare_tf_dataset(rows, batch_size=2, shuffle=False, tokenizer=tokenizer)
    assert "hold no labels" in caplog.text
    assert isinstance(tf_dataset.element_spec, dict) and sorted(tf_dataset.element_spec) == ["attention_mask", "input_ids"]
    assert model.predict(tf_dataset, verbose=0).logits.shape == (4, 2)


@pytest.mark.parametrize(
    "dataset, kwargs, error, message",
    [
        ([{"input_ids": [1, 2], "label": 0}], {"batch_size": 0}, ValueError, r"batch_size must be a positive int, got 0"),
        ([{"input_ids": [1, 2], "label": 0}], {"batch_size": 2.5}, ValueError, r"batch_size must be a positive int, got 2.5"),
        ([], {}, ValueError, r"empty dataset \(0 examples\)"),
        ({"input_ids": []}, {}, ValueError, r"empty dataset"),
        ([{"text": "hi", "label": 0}], {}, ValueError, r"None of the dataset's columns \['text', 'label'\] is an input of TFBertForSequenceClassification, which takes \['input_ids'"),
        ({"input_ids": [[1], [2]], "label": [0]}, {}, ValueError, r"same length, got \{'input_ids': 2, 'label': 1\}"),
        ([{"input_ids": [1, 2], "label": 0}] * 3, {"batch_size": 4}, ValueError, r"3 examples, fewer than batch_size=4, and drop_remainder=True"),
        ([{"input_ids": [1]}, [2]], {}, TypeError, r"one dict per example; item 1 is a list"),
        ("some text", {}, TypeError, r"takes a datasets.Dataset, a list of dicts or a dict of lists, got str"),
        ([{"input_ids": [1], "label": 0}, {"label": 1}], {"shuffle": False}, ValueError, r"Example 1 has no 'input_ids'"),
    ],
)
def test_prepare_tf_dataset_errors(dataset: object, kwargs: dict, error: type, message: str) -> None:
    model = sequence_model()
    with pytest.raises(error, match=message):
        model.prepare_tf_dataset(dataset, **kwargs)


def test_a_dataset_dict_asks_for_one_split() -> None:
    splits = datasets.DatasetDict(train=datasets.Dataset.from_dict({"input_ids": [[1, 2]], "label": [0]}))
    with pytest.raises(TypeError, match=r"dict of datasets \(splits \['train'\]\): pass one split, e.g. dataset\['train'\]"):
        sequence_model().prepare_tf_dataset(splits)


def test_text_left_in_a_model_input_is_a_typed_error() -> None:
    with pytest.raises(TypeError, match=r"array of <U2 \(text\?\)"):
        sequence_model().prepare_tf_dataset([{"input_ids": "hi"}], batch_size=1, collate_fn=lambda rows: {"input_ids": [r["input_ids"] for r in rows]})


# --- create_optimizer ----------------------------------------------------------------------------


def test_create_optimizer_schedule_matches_transformers_formula() -> None:
    # Transformers 4.46.3: lr = init_lr * step / warmup during the warm-up, then
    # (init_lr - end) * (1 - (step - warmup) / (total - warmup)) ** power + end, end = init_lr * min_lr_ratio.
    optimizer, schedule = create_optimizer(1e-3, num_train_steps=10, num_warmup_steps=4, min_lr_ratio=0.1)
    expected = [0.0, 2.5e-4, 5e-4, 7.5e-4, 1e-3, 8.5e-4, 7e-4, 5.5e-4, 4e-4, 2.5e-4, 1e-4, 1e-4, 1e-4]
    np.testing.assert_allclose([float(schedule(step)) for step in range(13)], expected, rtol=1e-5, atol=1e-10)
    assert isinstance(schedule, WarmUp) and type(optimizer) is keras.optimizers.Adam
    assert optimizer.beta_1 == 0.9 and optimizer.beta_2 == 0.999 and optimizer.epsilon == 1e-8

    _, schedule = create_optimizer(1e-3, num_train_steps=10, num_warmup_steps=0, power=2.0)
    expected = [1e-3, 8.1e-4, 6.4e-4, 4.9e-4, 3.6e-4, 2.5e-4, 1.6e-4, 9e-5, 4e-5, 1e-5, 0.0, 0.0]
    np.testing.assert_allclose([float(schedule(step)) for step in range(12)], expected, rtol=1e-5, atol=1e-10)
    assert not isinstance(schedule, WarmUp)


def test_weight_decay_spares_layernorm_and_bias() -> None:
    model = sequence_model()
    optimizer, _ = create_optimizer(0.1, num_train_steps=10, num_warmup_steps=0, weight_decay_rate=0.5)
    assert isinstance(optimizer, AdamWeightDecay) and optimizer.weight_decay_rate == 0.5
    variables = model.trainable_variables
    before = [v.numpy() for v in variables]
    # Zero gradients leave Adam's step at 0, so only the decay moves the weights: w *= 1 - lr * rate.
    optimizer.apply_gradients([(tf.zeros_like(v), v) for v in variables])
    decayed = []
    for variable, old in zip(variables, before):
        spared = "LayerNorm" in variable.path or "bias" in variable.path
        np.testing.assert_allclose(variable.numpy(), old if spared else old * (1 - 0.1 * 0.5), rtol=1e-6, err_msg=variable.path)
        decayed.append(not spared)
    assert 0 < sum(decayed) < len(variables)
    assert optimizer._do_use_weight_decay("tf_bert_model/bert/encoder/layer_._0/output/LayerNorm/gamma:0") is False
    assert optimizer._do_use_weight_decay("tf_bert_model/bert/encoder/layer_._0/output/dense/kernel:0") is True


def test_include_in_weight_decay_wins_over_exclusions() -> None:
    model = sequence_model()
    optimizer, _ = create_optimizer(0.1, 10, 0, weight_decay_rate=0.5, include_in_weight_decay=["embeddings/LayerNorm"])
    gamma = next(v for v in model.trainable_variables if v.path.endswith("embeddings/LayerNorm/gamma"))
    other_gamma = next(v for v in model.trainable_variables if v.path.endswith("output/LayerNorm/gamma"))
    optimizer.apply_gradients([(tf.zeros_like(v), v) for v in (gamma, other_gamma)])
    np.testing.assert_allclose(gamma.numpy(), 0.95)
    np.testing.assert_allclose(other_gamma.numpy(), 1.0)


def test_optimizer_and_schedule_survive_keras_serialization() -> None:
    optimizer, _ = create_optimizer(1e-3, 10, 4, weight_decay_rate=0.01, adam_global_clipnorm=1.0)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(restored, AdamWeightDecay) and restored.weight_decay_rate == 0.01 and restored.global_clipnorm == 1.0
    assert isinstance(restored._learning_rate, WarmUp)
    assert [float(restored._learning_rate(s)) for s in (2, 7)] == pytest.approx([5e-4, 5e-4])
    assert restored._do_use_weight_decay("x/LayerNorm/beta") is False


@pytest.mark.parametrize(
    "args, message",
    [
        ((1e-3, 0, 0), r"num_train_steps must be > 0, got 0"),
        ((1e-3, 10, 10), r"num_warmup_steps must be in \[0, num_train_steps=10\), got 10"),
        ((1e-3, 10, -1), r"got -1"),
    ],
)
def test_create_optimizer_errors(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_optimizer(*args)


# --- tf.distribute ---------------------------------------------------------------------------------

# Run in a fresh interpreter: the CPU must be split into two logical devices before TensorFlow
# initialises, which the test process has long done.
MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    import polyformers
    from polyformers_bert.configuration_bert import BertConfig

    tiny = json.loads(sys.argv[1])
    rng = np.random.default_rng(0)
    rows = []
    for i in range(32):  # learnable: the label is whether the first token is below 50
        ids = rng.integers(5, 100, int(rng.integers(3, 9)))
        rows.append({"input_ids": [2, *map(int, ids), 3], "label": int(ids[0] < 50)})

    def collate(batch):
        n = max(len(r["input_ids"]) for r in batch)
        ids = np.array([r["input_ids"] + [0] * (n - len(r["input_ids"])) for r in batch])
        return {"input_ids": ids, "attention_mask": (ids != 0).astype("int64"), "label": np.array([r["label"] for r in batch])}

    def train(model):
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.3))
        data = model.prepare_tf_dataset(rows, batch_size=8, shuffle=False, collate_fn=collate)
        return model.fit(data, epochs=4, verbose=0).history["loss"]

    config = BertConfig(**tiny, num_labels=2)
    keras.utils.set_random_seed(0)
    single = polyformers.TFBertForSequenceClassification(config)
    single.build_in_name_scope()
    initial = [w.numpy() for w in single.weights]
    single_losses = train(single)

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        mirrored = polyformers.TFBertForSequenceClassification(config)
        mirrored.build_in_name_scope()
        mirrored.set_weights(initial)
        mirrored_losses = train(mirrored)
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "single": single_losses,
        "mirrored": mirrored_losses,
        "max_weight_diff": max(float(np.abs(a.numpy() - b.numpy()).max()) for a, b in zip(single.weights, mirrored.weights)),
        "max_weight_change": max(float(np.abs(a.numpy() - b).max()) for a, b in zip(mirrored.weights, initial)),
    }))
    """
)


@pytest.mark.slow
def test_mirrored_strategy_on_two_cpus_trains_like_one_device(tmp_path: Path) -> None:
    import json

    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT, encoding="utf-8")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}
    result = subprocess.run([sys.executable, str(script), json.dumps(TINY)], capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["mirrored"][-1] < report["mirrored"][0]  # it trains
    # Each replica takes half of each batch of 8; the gradients are averaged, not summed.
    np.testing.assert_allclose(report["mirrored"], report["single"], rtol=1e-4)
    assert report["max_weight_change"] > 1e-2 and report["max_weight_diff"] < 1e-4, report
