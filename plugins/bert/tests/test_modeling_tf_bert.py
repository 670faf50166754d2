"""BERT (TensorFlow): the shared TF model tests on a tiny config, BERT specifics, and equivalence with our PyTorch BERT."""

from __future__ import annotations

import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from polyformers.conversion import tf_name_to_pt, to_pt_state  # noqa: E402
from polyformers.testing.tf_model_tester import TFModelTesterMixin, first_output, max_abs_diff  # noqa: E402
from polyformers.tf_h5 import read_safetensors_numpy, read_tf_h5  # noqa: E402
from polyformers_bert.configuration_bert import BertConfig  # noqa: E402
from polyformers_bert.modeling_tf_bert import (  # noqa: E402
    TFBertForMaskedLM,
    TFBertForMultipleChoice,
    TFBertForNextSentencePrediction,
    TFBertForPreTraining,
    TFBertForQuestionAnswering,
    TFBertForSequenceClassification,
    TFBertForTokenClassification,
    TFBertLMHeadModel,
    TFBertModel,
)

TINY = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=64,
    type_vocab_size=4,
)
BATCH, SEQ, CHOICES = 3, 7, 4
ALL_CLASSES = (
    TFBertModel,
    TFBertForPreTraining,
    TFBertLMHeadModel,
    TFBertForMaskedLM,
    TFBertForNextSentencePrediction,
    TFBertForSequenceClassification,
    TFBertForMultipleChoice,
    TFBertForTokenClassification,
    TFBertForQuestionAnswering,
)
ATOL = 1e-5


def tiny_config(**overrides) -> BertConfig:
    return BertConfig(**{**TINY, **overrides})


def bert_inputs(config: BertConfig, class_name: str, with_labels: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
    """Numpy inputs (int64, as PyTorch wants them) for a class named with or without the TF prefix."""
    class_name = class_name.removeprefix("TF")
    rng = np.random.RandomState(seed)
    shape = (BATCH, CHOICES, SEQ) if class_name == "BertForMultipleChoice" else (BATCH, SEQ)
    inputs = {
        "input_ids": rng.randint(1, config.vocab_size, shape),
        "token_type_ids": rng.randint(0, 2, shape),
        "attention_mask": np.ones(shape, dtype=np.int64),
    }
    inputs["attention_mask"][-1, ..., SEQ - 2 :] = 0  # the last row is padded
    if not with_labels:
        return inputs
    if class_name in ("BertForMaskedLM", "BertLMHeadModel", "BertForPreTraining"):
        inputs["labels"] = rng.randint(0, config.vocab_size, (BATCH, SEQ))
        inputs["labels"][:, 0] = -100
    if class_name == "BertForPreTraining":
        inputs["next_sentence_label"] = rng.randint(0, 2, (BATCH,))
    if class_name == "BertForNextSentencePrediction":
        inputs["labels"] = rng.randint(0, 2, (BATCH,))
    if class_name == "BertForSequenceClassification":
        inputs["labels"] = rng.randint(0, config.num_labels, (BATCH,))
    if class_name == "BertForMultipleChoice":
        inputs["labels"] = rng.randint(0, CHOICES, (BATCH,))
    if class_name == "BertForTokenClassification":
        inputs["labels"] = rng.randint(0, config.num_labels, (BATCH, SEQ))
    if class_name == "BertForQuestionAnswering":
        inputs["start_positions"] = rng.randint(0, SEQ, (BATCH,))
        inputs["end_positions"] = rng.randint(0, SEQ, (BATCH,))
    return inputs


def as_tf(inputs: dict[str, np.ndarray]) -> dict[str, tf.Tensor]:
    return {k: tf.constant(v) for k, v in inputs.items()}


class TestTFBertModels(TFModelTesterMixin):
    all_model_classes = ALL_CLASSES
    base_model_class = TFBertModel
    fit_model_class = TFBertForSequenceClassification

    def get_config(self) -> BertConfig:
        return tiny_config()

    def get_inputs(self, config, model_class, with_labels=False):
        return bert_inputs(config, model_class.__name__, with_labels)

    def test_keras_fit_with_y_and_a_keras_loss(self):
        """``fit(x, y)`` moves y into the labels; a loss given to compile() is applied to the logits."""
        import keras

        config = tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=3)
        model = self.make_model(TFBertForSequenceClassification, config)
        data = bert_inputs(config, "BertForSequenceClassification", with_labels=True)
        labels = data.pop("labels")
        model.compile(optimizer=keras.optimizers.Adam(3e-3))
        own = model.fit(data, labels, epochs=4, batch_size=BATCH, verbose=0, shuffle=False).history["loss"]
        assert own[-1] < own[0], own
        model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        history = model.fit(data, labels, epochs=4, batch_size=BATCH, verbose=0, shuffle=False).history
        assert history["loss"][-1] < history["loss"][0] and "accuracy" in history


# --- BERT-specific behaviour ---------------------------------------------------------------------


def _model(model_class, **overrides):
    import keras

    keras.utils.set_random_seed(0)
    model = model_class(tiny_config(**overrides))
    model.build_in_name_scope()
    return model


def test_names_map_to_our_pytorch_bert():
    """Every TF variable converts to the PyTorch parameter of the same role, and covers them all."""
    torch = pytest.importorskip("torch")
    from polyformers_bert import modeling_bert

    for model_class in ALL_CLASSES:
        config = tiny_config(is_decoder=model_class is TFBertLMHeadModel, add_cross_attention=model_class is TFBertLMHeadModel, position_embedding_type="relative_key")
        tf_model = model_class(config)
        tf_model.build_in_name_scope()
        converted = {tf_name_to_pt(f"{tf_model.name}/{name}", len(v.shape))[0] for name, v in tf_model._named_variables().items()}
        torch.manual_seed(0)
        pt_names = set(getattr(modeling_bert, model_class.__name__[2:])(config).state_dict())
        pt_names -= {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}  # tied copies
        if model_class is TFBertModel:  # Transformers' TF base model keeps its layers under "bert/"
            pt_names = {f"bert.{name}" for name in pt_names}
        assert converted == pt_names, f"{model_class.__name__}: {sorted(converted ^ pt_names)}"


@pytest.mark.parametrize("problem_type,labels", [
    ("regression", np.array([[0.5], [-1.0], [2.0]], np.float32)),
    ("single_label_classification", np.array([0, 2, 1])),
    ("multi_label_classification", np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]], np.float32)),
])
def test_sequence_classification_losses(problem_type, labels):
    num_labels = 1 if problem_type == "regression" else 3
    model = _model(TFBertForSequenceClassification, num_labels=num_labels)
    out = model(as_tf(bert_inputs(model.config, "BertForSequenceClassification")), labels=tf.constant(labels))
    assert model.config.problem_type == problem_type  # inferred from num_labels and the labels' dtype
    logits = out.logits.numpy().astype(np.float64)
    if problem_type == "regression":
        expected = ((logits - labels) ** 2).mean(-1)
    elif problem_type == "single_label_classification":
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        expected = -log_probs[np.arange(3), labels]
    else:
        expected = (np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))).mean(-1)
    assert out.loss.shape == (3,)  # one loss per example, as Transformers' TF models
    np.testing.assert_allclose(out.loss.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_lm_losses_ignore_minus_100():
    model = _model(TFBertForMaskedLM)
    inputs = as_tf(bert_inputs(model.config, "BertForMaskedLM"))
    labels = np.full((BATCH, SEQ), -100)
    labels[0, 2], labels[1, 4] = 5, 7
    out = model(inputs, labels=tf.constant(labels))
    log_probs = tf.nn.log_softmax(out.logits).numpy()
    expected = -(log_probs[0, 2, 5] + log_probs[1, 4, 7]) / 2
    assert out.loss.shape == (1,)
    np.testing.assert_allclose(out.loss.numpy()[0], expected, rtol=1e-5)


@pytest.mark.parametrize("position_embedding_type", ["absolute", "relative_key", "relative_key_query"])
def test_decoder_cache_matches_full_forward(position_embedding_type):
    """Decoding token by token with past_key_values gives the logits of one full forward."""
    model = _model(TFBertLMHeadModel, is_decoder=True, add_cross_attention=True, position_embedding_type=position_embedding_type)
    rng = np.random.RandomState(3)
    ids = tf.constant(rng.randint(1, 99, (2, 6)))
    encoder_states = tf.constant(rng.randn(2, 5, 32).astype(np.float32))
    encoder_mask = np.ones((2, 5), np.int32)
    encoder_mask[1, 3:] = 0
    kwargs = dict(encoder_hidden_states=encoder_states, encoder_attention_mask=tf.constant(encoder_mask))
    full = model(ids, **kwargs).logits
    out = model(ids[:, :3], use_cache=True, **kwargs)
    steps, past = [out.logits], out.past_key_values
    assert len(past) == 2 and len(past[0]) == 4  # (self k, self v, cross k, cross v) per layer
    for t in range(3, 6):
        out = model(ids[:, t : t + 1], past_key_values=past, use_cache=True, **kwargs)
        past = out.past_key_values
        steps.append(out.logits)
    assert max_abs_diff(tf.concat(steps, axis=1), full) < 1e-5


@pytest.mark.parametrize("position_embedding_type", ["relative_key", "relative_key_query"])
def test_relative_positions_ignore_left_padding(position_embedding_type):
    """With only relative positions, masked tokens in front shift nothing: outputs stay equal."""
    model = _model(TFBertModel, position_embedding_type=position_embedding_type)
    ids = np.random.RandomState(4).randint(1, 99, (1, 5))
    padded = np.concatenate([np.zeros((1, 2), np.int64), ids], axis=1)
    mask = tf.constant([[0, 0, 1, 1, 1, 1, 1]])
    plain = model(tf.constant(ids)).last_hidden_state
    shifted = model(tf.constant(padded), attention_mask=mask).last_hidden_state[:, 2:]
    assert max_abs_diff(plain, shifted) < 1e-5
    absolute = _model(TFBertModel)
    assert max_abs_diff(absolute(tf.constant(ids)).last_hidden_state, absolute(tf.constant(padded), attention_mask=mask).last_hidden_state[:, 2:]) > 1e-3


def test_head_mask():
    model = _model(TFBertModel)
    inputs = as_tf(bert_inputs(model.config, "BertModel"))
    plain = model(inputs).last_hidden_state
    ones = model(inputs, head_mask=tf.ones(4)).last_hidden_state
    mask = np.ones((2, 4), np.float32)
    mask[0, 1] = 0
    masked = model(inputs, head_mask=tf.constant(mask), output_attentions=True)
    assert max_abs_diff(plain, ones) < 1e-5
    assert float(tf.reduce_max(tf.abs(masked.attentions[0][:, 1]))) == 0
    assert float(tf.reduce_max(tf.abs(masked.attentions[1][:, 1]))) > 0
    assert max_abs_diff(plain, masked.last_hidden_state) > 1e-4
    with pytest.raises(ValueError, match="head_mask has 3 layers"):
        model(inputs, head_mask=tf.ones((3, 4)))


def test_inputs_embeds_equal_input_ids():
    model = _model(TFBertModel)
    inputs = as_tf(bert_inputs(model.config, "BertModel"))
    ids = inputs.pop("input_ids")
    a = model(input_ids=ids, **inputs).last_hidden_state
    b = model(inputs_embeds=tf.gather(model.bert.embeddings.weight, ids), **inputs).last_hidden_state
    assert max_abs_diff(a, b) == 0.0
    with pytest.raises(ValueError, match="either input_ids or inputs_embeds"):
        model(input_ids=ids, inputs_embeds=tf.gather(model.bert.embeddings.weight, ids))


@pytest.mark.parametrize("hidden_act", ["gelu_new", "relu", "silu", "gelu_pytorch_tanh"])
def test_hidden_act_variants_run(hidden_act):
    model = _model(TFBertForMaskedLM, hidden_act=hidden_act)
    logits = model(as_tf(bert_inputs(model.config, "BertForMaskedLM"))).logits
    assert bool(tf.reduce_all(tf.math.is_finite(logits)))


def test_input_errors_name_the_limit():
    model = _model(TFBertModel)
    with pytest.raises(ValueError, match="max_position_embeddings=64"):
        model(tf.ones((1, 65), tf.int32))
    with pytest.raises(ValueError, match=r"input_ids must be in \[0, 99\) \(vocab_size=99\), got values from 1 to 120"):
        model(tf.constant([[1, 120]]))


def test_mlm_decoder_is_tied_and_can_be_untied():
    model = _model(TFBertForMaskedLM)
    assert model.mlm.predictions.decoder_weight is model.bert.embeddings.weight
    assert not any("decoder" in name for name in model._named_variables())
    untied = _model(TFBertForMaskedLM, tie_word_embeddings=False)
    assert untied.mlm.predictions.decoder_weight is not untied.bert.embeddings.weight
    assert "mlm___cls/predictions/decoder/weight:0" in untied._named_variables()


def test_question_answering_loss_ignores_positions_past_the_end():
    model = _model(TFBertForQuestionAnswering)
    inputs = as_tf(bert_inputs(model.config, "BertForQuestionAnswering"))
    out = model(inputs, start_positions=tf.constant([1, 2, 99]), end_positions=tf.constant([3, 4, 99]))
    assert out.loss.shape == (3,) and float(out.loss[2]) == 0.0 and float(out.loss[0]) > 0.0


# --- equivalence with our PyTorch BERT -------------------------------------------------------------


VARIANTS = {"absolute": {}, "relative_key_query": {"position_embedding_type": "relative_key_query"}}


def _pytorch_pair(class_name: str, **overrides):
    """(our PyTorch model, our TF model of the same class with random weights of its own, config)."""
    torch = pytest.importorskip("torch")
    from polyformers_bert import modeling_bert, modeling_tf_bert

    config = tiny_config(**overrides)
    torch.manual_seed(0)
    pt_model = getattr(modeling_bert, class_name)(config).eval()
    tf_model = getattr(modeling_tf_bert, "TF" + class_name)(config)
    tf_model.build_in_name_scope()
    return pt_model, tf_model, config


def _compare_with_pytorch(pt_model, tf_model, inputs: dict[str, np.ndarray]) -> float:
    """Run both on the same inputs (with labels, attentions and hidden states): the largest difference of any output."""
    import torch

    with torch.no_grad():
        expected = pt_model(**{k: torch.from_numpy(v) for k, v in inputs.items()}, output_attentions=True, output_hidden_states=True)
    actual = tf_model(as_tf(inputs), output_attentions=True, output_hidden_states=True)
    assert list(actual.keys()) == list(expected.keys())
    worst = 0.0
    for key in expected.keys():
        ours = actual[key]
        if key == "loss":  # PyTorch averages; Transformers' TF losses are (1,) or one per example
            ours = tf.reduce_mean(ours)
        worst = max(worst, max_abs_diff(expected[key].numpy() if hasattr(expected[key], "numpy") else tuple(t.numpy() for t in expected[key]), ours))
    return worst


CLASS_NAMES = tuple(c.__name__[2:] for c in ALL_CLASSES)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("class_name", CLASS_NAMES)
def test_pytorch_to_tf_and_back_in_memory(class_name, variant):
    import torch

    pt_model, tf_model, config = _pytorch_pair(class_name, **VARIANTS[variant])
    info = tf_model.load_pt_state_dict(pt_model.state_dict())
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == [], info
    inputs = bert_inputs(config, class_name, with_labels=True)
    assert _compare_with_pytorch(pt_model, tf_model, inputs) < ATOL

    back_state = {k: torch.from_numpy(v) for k, v in tf_model.pt_state_dict().items()}
    back, info = type(pt_model).from_pretrained(None, config=config, state_dict=back_state, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [], info
    for name, tensor in pt_model.state_dict().items():
        assert torch.equal(back.state_dict()[name], tensor), name


@pytest.mark.parametrize("class_name", CLASS_NAMES)
def test_pytorch_to_tf_and_back_through_files(tmp_path, class_name):
    """PyTorch safetensors and pytorch_model.bin load into TF; TF's tf_model.h5 and TF safetensors convert back."""
    import torch

    from polyformers_bert import modeling_tf_bert

    pt_model, _, config = _pytorch_pair(class_name)
    tf_class = getattr(modeling_tf_bert, "TF" + class_name)
    inputs = bert_inputs(config, class_name, with_labels=True)
    pt_model.save_pretrained(tmp_path / "pt")
    pt_model.save_pretrained(tmp_path / "pt_bin", safe_serialization=False)
    from_safetensors, info = tf_class.from_pretrained(tmp_path / "pt", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert _compare_with_pytorch(pt_model, from_safetensors, inputs) < ATOL
    from_bin = tf_class.from_pretrained(tmp_path / "pt_bin", from_pt=True)
    assert _compare_with_pytorch(pt_model, from_bin, inputs) < ATOL

    from_bin.save_pretrained(tmp_path / "tf_h5")
    from_bin.save_pretrained(tmp_path / "tf_st", safe_serialization=True)
    h5_state = to_pt_state(read_tf_h5(tmp_path / "tf_h5" / "tf_model.h5"), tf_name_to_pt)
    st_weights, metadata = read_safetensors_numpy(tmp_path / "tf_st" / "model.safetensors")
    assert metadata == {"format": "tf"}
    st_state = to_pt_state(st_weights, lambda name, ndim: tf_name_to_pt(name, ndim, strip_model_scope=False))
    for state in (h5_state, st_state):
        back = type(pt_model).from_pretrained(None, config=config, state_dict={k: torch.from_numpy(v) for k, v in state.items()})
        assert _compare_with_pytorch(back, from_bin, inputs) < ATOL


def test_pytorch_from_tf_reads_our_files(tmp_path):
    """Our PyTorch BERT's ``from_tf=True`` (conversion side) reads what the TF model writes."""
    pt_model, tf_model, config = _pytorch_pair("BertForMaskedLM")
    tf_model.load_pt_state_dict(pt_model.state_dict())
    tf_model.save_pretrained(tmp_path)
    try:
        loaded = type(pt_model).from_pretrained(tmp_path, from_tf=True)
    except NotImplementedError:
        pytest.skip("PyTorch from_tf=True is not implemented in this checkout yet")
    assert _compare_with_pytorch(loaded, tf_model, bert_inputs(config, "BertForMaskedLM", with_labels=True)) < ATOL


@pytest.mark.parametrize("position_embedding_type", ["absolute", "relative_key"])
def test_pytorch_equivalence_decoder_with_cache(position_embedding_type):
    import torch

    pt_model, tf_model, config = _pytorch_pair("BertLMHeadModel", is_decoder=True, add_cross_attention=True, position_embedding_type=position_embedding_type)
    tf_model.load_pt_state_dict(pt_model.state_dict())
    rng = np.random.RandomState(2)
    ids = rng.randint(1, 99, (2, 6))
    states = rng.randn(2, 5, 32).astype(np.float32)
    with torch.no_grad():
        pt_first = pt_model(torch.from_numpy(ids[:, :5]), encoder_hidden_states=torch.from_numpy(states), use_cache=True)
        pt_last = pt_model(torch.from_numpy(ids[:, 5:]), encoder_hidden_states=torch.from_numpy(states), past_key_values=pt_first.past_key_values, use_cache=True)
    tf_first = tf_model(tf.constant(ids[:, :5]), encoder_hidden_states=tf.constant(states), use_cache=True)
    tf_last = tf_model(tf.constant(ids[:, 5:]), encoder_hidden_states=tf.constant(states), past_key_values=tf_first.past_key_values, use_cache=True)
    assert max_abs_diff(pt_first.logits.numpy(), tf_first.logits) < ATOL
    assert max_abs_diff(tuple(tuple(t.numpy() for t in layer) for layer in pt_first.past_key_values), tf_first.past_key_values) < ATOL
    assert max_abs_diff(pt_last.logits.numpy(), tf_last.logits) < ATOL


def test_pytorch_equivalence_untied_decoder_and_pruned_heads(tmp_path):
    import torch

    pt_model, _, config = _pytorch_pair("BertForMaskedLM", tie_word_embeddings=False)
    with torch.no_grad():
        pt_model.cls.predictions.decoder.weight.mul_(1.5)  # make the untied copy really differ
    pt_model.bert.prune_heads({0: [0, 2], 1: [3]})
    pt_model.save_pretrained(tmp_path)
    tf_model, info = TFBertForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    assert tf_model.bert.encoder.layer[0].attention.self_attention.num_attention_heads == 2
    assert _compare_with_pytorch(pt_model, tf_model, bert_inputs(pt_model.config, "BertForMaskedLM", with_labels=True)) < ATOL


def test_bfloat16_pytorch_checkpoint_loads_as_float32(tmp_path):
    import torch

    pt_model, _, config = _pytorch_pair("BertForSequenceClassification")
    pt_model.to(torch.bfloat16).save_pretrained(tmp_path)
    tf_model = TFBertForSequenceClassification.from_pretrained(tmp_path)
    assert all(v.dtype == "float32" for v in tf_model.weights)
    expected = pt_model.bert.embeddings.word_embeddings.weight.detach().float().numpy()
    np.testing.assert_array_equal(tf_model.bert.embeddings.weight.numpy(), expected)


def test_flax_safetensors_load(tmp_path):
    """A Flax model's safetensors ({"format": "flax"}) load into the TF model with the same outputs."""
    pytest.importorskip("flax")
    modeling_flax_bert = pytest.importorskip("polyformers_bert.modeling_flax_bert")

    config = tiny_config()
    flax_model = modeling_flax_bert.FlaxBertForMaskedLM(config)
    flax_model.save_pretrained(tmp_path, safe_serialization=True)
    tf_model, info = TFBertForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    inputs = bert_inputs(config, "BertForMaskedLM")
    assert max_abs_diff(np.asarray(flax_model(**inputs).logits), tf_model(as_tf(inputs)).logits) < ATOL


def test_tf_auto_classes_resolve_bert(tmp_path):
    import polyformers
    from polyformers.registry import get_model_class

    try:
        get_model_class("bert", "sequence-classification", "tf")
    except Exception as exc:  # registration lives in the plugin's _plugin.py
        pytest.skip(f"TF BERT classes are not registered with the plugin yet: {exc}")
    _model(TFBertForSequenceClassification).save_pretrained(tmp_path)
    assert type(polyformers.TFAutoModel.from_pretrained(tmp_path)) is TFBertModel
    assert type(polyformers.TFAutoModelForSequenceClassification.from_pretrained(tmp_path)) is TFBertForSequenceClassification
    assert polyformers.TFBertForMaskedLM is TFBertForMaskedLM


def test_tf_h5_reads_without_tensorflow_and_chunks_long_name_lists(tmp_path):
    """read_tf_h5 (PyTorch's from_tf uses it) imports no framework; long name lists are split as Keras 2 splits them."""
    import subprocess
    import sys

    import h5py

    from polyformers.tf_h5 import write_tf_h5

    names = [f"tf_model/bert/encoder/layer_._{i}/attention/self/query/kernel_with_a_long_name_{i:04d}:0" for i in range(900)]
    write_tf_h5(tmp_path / "tf_model.h5", {"bert": {name: np.full((2,), i, np.float32) for i, name in enumerate(names)}})
    with h5py.File(tmp_path / "tf_model.h5") as f:
        assert "weight_names" not in f["bert"].attrs and "weight_names1" in f["bert"].attrs  # over HDF5's 64 KiB header limit
    code = (
        "import sys; from polyformers.tf_h5 import read_tf_h5; "
        f"w = read_tf_h5({str(tmp_path / 'tf_model.h5')!r}); "
        "print(len(w), sorted(m for m in ('tensorflow', 'torch', 'jax', 'keras') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "900 []"


def test_import_polyformers_imports_no_framework():
    import subprocess
    import sys

    code = "import sys, polyformers, polyformers.tf_h5; print(sorted(m for m in ('tensorflow', 'torch', 'jax', 'keras') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, check=True)
    assert out.stdout.strip() == "[]"
