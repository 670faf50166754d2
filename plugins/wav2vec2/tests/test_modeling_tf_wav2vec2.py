"""Wav2Vec2 (TensorFlow, Keras 3): the shared TF model tests, then equivalence with our PyTorch model.

The PyTorch comparisons load one set of random weights into both models (PyTorch state dict ->
TensorFlow variables, and back) for every head and config variant, and compare outputs, hidden
states, attentions and losses.
"""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
torch = pytest.importorskip("torch")

import keras  # noqa: E402

from polyformers.conversion import tf_name_to_pt  # noqa: E402
from polyformers.testing.tf_model_tester import TFModelTesterMixin, max_abs_diff  # noqa: E402
from polyformers_wav2vec2 import modeling_wav2vec2  # noqa: E402
from polyformers_wav2vec2.configuration_wav2vec2 import Wav2Vec2Config  # noqa: E402
from polyformers_wav2vec2.modeling_tf_wav2vec2 import (  # noqa: E402
    TFWav2Vec2ForCTC,
    TFWav2Vec2ForSequenceClassification,
    TFWav2Vec2Model,
)

TINY = dict(
    vocab_size=12,
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=37,  # > 20KB of weights, so that the mixin's 20KB shards are several
    conv_dim=(8, 8),
    conv_kernel=(10, 3),
    conv_stride=(5, 3),
    num_conv_pos_embeddings=4,  # even: the positional conv drops its last frame
    num_conv_pos_embedding_groups=2,
    classifier_proj_size=6,
    hidden_dropout=0.0,
    attention_dropout=0.0,
    activation_dropout=0.0,
    feat_proj_dropout=0.0,
    final_dropout=0.0,
    layerdrop=0.0,
)
VARIANTS = {
    "group": dict(feat_extract_norm="group"),
    "layer-conv_bias-weighted": dict(feat_extract_norm="layer", conv_bias=True, use_weighted_layer_sum=True, num_conv_pos_embeddings=5),
    "layer-stable": dict(feat_extract_norm="layer", do_stable_layer_norm=True, adapter_attn_dim=5, use_weighted_layer_sum=True),
    "adapter": dict(add_adapter=True, output_hidden_size=24, num_adapter_layers=2, adapter_stride=2),
}
HEADS = ("Wav2Vec2Model", "Wav2Vec2ForCTC", "Wav2Vec2ForSequenceClassification")
BATCH, SAMPLES = 2, 1600
ATOL = 1e-5


def tiny_config(**overrides) -> Wav2Vec2Config:
    return Wav2Vec2Config(**{**TINY, **overrides})


def audio_inputs(class_name: str, with_labels: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.RandomState(seed)
    mask = np.ones((BATCH, SAMPLES), dtype=np.int32)
    mask[1, 1100:] = 0  # the second clip is shorter
    inputs = {"input_values": rng.randn(BATCH, SAMPLES).astype(np.float32), "attention_mask": mask}
    if with_labels and class_name.endswith("ForCTC"):
        inputs["labels"] = np.array([[1, 2, 3, 4], [5, 6, -100, -100]], dtype=np.int32)
    elif with_labels and class_name.endswith("ForSequenceClassification"):
        inputs["labels"] = np.array([0, 1], dtype=np.int32)
    return inputs


class TestTFWav2Vec2(TFModelTesterMixin):
    # CTC first: the mixin's shape-mismatch test changes vocab_size.
    all_model_classes = (TFWav2Vec2ForCTC, TFWav2Vec2Model, TFWav2Vec2ForSequenceClassification)
    base_model_class = TFWav2Vec2Model
    fit_model_class = TFWav2Vec2ForSequenceClassification

    def get_config(self) -> Wav2Vec2Config:
        return tiny_config()

    def get_inputs(self, config, model_class, with_labels=False):
        return audio_inputs(model_class.__name__, with_labels)

    def test_tf_function_and_xla_match_eager(self):
        """As the mixin's, with the loss compared relatively: a CTC sum over ~100 frames is ~400."""
        for model_class in self._each_class():
            model = self.model(model_class)
            inputs = {k: tf.constant(v) for k, v in self.get_inputs(model.config, model_class, with_labels=True).items()}
            eager = model(inputs, output_hidden_states=True)
            for how, compiled in (("tf.function", tf.function(model)), ("XLA", tf.function(model, jit_compile=True))):
                outputs = compiled(inputs, output_hidden_states=True)
                assert type(outputs) is type(eager) and list(outputs.keys()) == list(eager.keys()), how
                for key in eager.keys():
                    if key == "loss":
                        np.testing.assert_allclose(outputs[key], eager[key], rtol=1e-6, err_msg=f"{model_class.__name__} under {how}")
                    else:
                        assert max_abs_diff(eager[key], outputs[key]) < ATOL, f"{model_class.__name__} {key} under {how}"

    def test_mismatched_sizes(self, tmp_path):
        """The mixin's check, for a head whose vocabulary is the kernel's last axis."""
        from polyformers.errors import WeightShapeMismatchError

        model = self.model(TFWav2Vec2ForCTC)
        model.save_pretrained(tmp_path)
        bigger = tiny_config(vocab_size=TINY["vocab_size"] + 3)
        with pytest.raises(WeightShapeMismatchError, match=r"lm_head/kernel:0: checkpoint \[16, 12\], model \[16, 15\]"):
            TFWav2Vec2ForCTC.from_pretrained(tmp_path, config=bigger)
        loaded, info = TFWav2Vec2ForCTC.from_pretrained(tmp_path, config=bigger, ignore_mismatched_sizes=True, output_loading_info=True)
        assert sorted(name for name, _, _ in info["mismatched_keys"]) == ["lm_head/bias:0", "lm_head/kernel:0"]
        assert loaded.lm_head.kernel.shape == (16, 15)

    def test_keras_fit_lowers_loss(self):
        """``compile()`` without a loss trains on the model's own loss (audio inputs, so not the mixin's)."""
        for model_class in (TFWav2Vec2ForSequenceClassification, TFWav2Vec2ForCTC):
            model = self.make_model(model_class)
            data = audio_inputs(model_class.__name__, with_labels=True)
            model.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-3))
            losses = model.fit(data, epochs=5, batch_size=BATCH, verbose=0, shuffle=False).history["loss"]
            assert losses[-1] < losses[0], f"{model_class.__name__}: loss did not go down: {losses}"
            predictions = model.predict({k: data[k] for k in ("input_values", "attention_mask")}, verbose=0)
            assert predictions.logits.shape[0] == BATCH


# --- our PyTorch model on the same weights ---------------------------------------------------------


def _pair(class_name: str, config: Wav2Vec2Config):
    torch.manual_seed(0)
    pt_model = getattr(modeling_wav2vec2, class_name)(config).eval()
    keras.utils.set_random_seed(0)
    tf_model = globals()["TF" + class_name](config)
    tf_model.build_in_name_scope()
    return pt_model, tf_model


def _pt_forward(pt_model, inputs: dict[str, np.ndarray]):
    with torch.no_grad():
        tensors = {k: torch.tensor(v.astype(np.int64) if k == "labels" else v) for k, v in inputs.items()}
        return pt_model(**tensors, output_hidden_states=True, output_attentions=True)


def _tf_forward(tf_model, inputs: dict[str, np.ndarray]):
    return tf_model({k: tf.constant(v) for k, v in inputs.items()}, output_hidden_states=True, output_attentions=True)


def _assert_same_outputs(pt_out, tf_out, what: str) -> float:
    keys = [k for k in pt_out.keys() if k != "loss"]
    assert keys == [k for k in tf_out.keys() if k != "loss"], what
    worst = max(max_abs_diff(pt_out[k].numpy() if hasattr(pt_out[k], "numpy") else tuple(t.numpy() for t in pt_out[k]), tf_out[k]) for k in keys)
    assert worst < ATOL, f"{what}: outputs differ by {worst}"
    if "loss" in pt_out.keys():
        np.testing.assert_allclose(np.ravel(tf_out["loss"]), np.ravel(pt_out["loss"].numpy()), rtol=1e-5, atol=1e-5, err_msg=what)
    return worst


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("class_name", HEADS)
def test_matches_pytorch_both_ways(variant, class_name):
    """PyTorch weights -> TF model -> same outputs; the TF model's weights -> a new PyTorch model -> same outputs."""
    config = tiny_config(**VARIANTS[variant])
    if class_name == "Wav2Vec2ForSequenceClassification" and config.add_adapter:
        with pytest.raises(ValueError, match="adapters"):
            TFWav2Vec2ForSequenceClassification(config)
        return
    pt_model, tf_model = _pair(class_name, config)
    info = tf_model.load_pt_state_dict(pt_model.state_dict())
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    inputs = audio_inputs(class_name, with_labels=True)
    _assert_same_outputs(_pt_forward(pt_model, inputs), _tf_forward(tf_model, inputs), f"{variant} {class_name} PT->TF")
    no_mask = {k: v for k, v in inputs.items() if k != "attention_mask"}
    _assert_same_outputs(_pt_forward(pt_model, no_mask), _tf_forward(tf_model, no_mask), f"{variant} {class_name} no mask")

    # And back: the TF variables as a PyTorch state dict (old weight-norm names, which PyTorch renames).
    state = tf_model.pt_state_dict()
    weight_g = next(k for k in state if k.endswith("pos_conv_embed.conv.weight_g"))
    assert state[weight_g].shape == (1, 1, config.num_conv_pos_embeddings)
    state = {k: torch.tensor(v) for k, v in state.items()}
    pt_back, info = getattr(modeling_wav2vec2, class_name).from_pretrained(None, config=config, state_dict=state, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    _assert_same_outputs(_pt_forward(pt_back, inputs), _tf_forward(tf_model, inputs), f"{variant} {class_name} TF->PT")


def test_names_map_to_our_pytorch_model():
    """Every TF variable maps to a PyTorch parameter of the same size (weight norm included)."""
    config = tiny_config(use_weighted_layer_sum=True)
    pt_model, tf_model = _pair("Wav2Vec2ForSequenceClassification", config)
    pt_state = {k: v for k, v in pt_model.state_dict().items()}
    for name, variable in tf_model._named_variables().items():
        pt_name, _ = tf_name_to_pt(f"{tf_model.name}/{name}", len(variable.shape))
        pt_name = pt_name.replace(".weight_g", ".parametrizations.weight.original0").replace(".weight_v", ".parametrizations.weight.original1")
        assert pt_name in pt_state, name
        assert pt_state[pt_name].numel() == int(np.prod(variable.shape)), name
    assert "wav2vec2/encoder/pos_conv_embed/conv/weight_v:0" in tf_model._named_variables()
    assert "layer_weights:0" in tf_model._named_variables()


def test_ctc_loss_reductions_and_zero_infinity():
    config = tiny_config()
    pt_model, tf_model = _pair("Wav2Vec2ForCTC", config)
    tf_model.load_pt_state_dict(pt_model.state_dict())
    inputs = audio_inputs("Wav2Vec2ForCTC", with_labels=True)
    inputs["labels"] = np.array([[1, -100, 2, 3], [5, 6, -100, -100]], dtype=np.int32)  # -100 anywhere is dropped
    for reduction in ("sum", "mean", "none"):
        config.ctc_loss_reduction = reduction
        pt_loss = _pt_forward(pt_model, inputs).loss.numpy()
        tf_loss = _tf_forward(tf_model, inputs).loss.numpy()
        assert tf_loss.shape == ((BATCH,) if reduction == "none" else (1,))
        np.testing.assert_allclose(np.ravel(tf_loss), np.ravel(pt_loss), rtol=1e-5, err_msg=reduction)
    # Targets longer than the frames: an infinite loss, zeroed with ctc_zero_infinity.
    config.ctc_loss_reduction = "none"
    impossible = dict(inputs, labels=np.ones((BATCH, 60), dtype=np.int32))  # 60 repeats need 119 frames, there are 106
    assert np.isinf(_tf_forward(tf_model, impossible).loss.numpy()).all() and np.isinf(_pt_forward(pt_model, impossible).loss.numpy()).all()
    config.ctc_zero_infinity = True
    np.testing.assert_array_equal(_tf_forward(tf_model, impossible).loss.numpy(), np.zeros(BATCH))
    np.testing.assert_array_equal(_pt_forward(pt_model, impossible).loss.numpy(), np.zeros(BATCH))
    with pytest.raises(ValueError, match="vocab_size"):
        tf_model(tf.constant(inputs["input_values"]), labels=tf.constant([[config.vocab_size]]))


def test_mask_time_indices_use_the_masked_spec_embedding():
    config = tiny_config(mask_time_prob=0.5, mask_time_length=2)
    pt_model, tf_model = _pair("Wav2Vec2Model", config)
    tf_model.load_pt_state_dict(pt_model.state_dict())
    inputs = audio_inputs("Wav2Vec2Model")
    frames = _tf_forward(tf_model, inputs).last_hidden_state.shape[1]
    mask = np.zeros((BATCH, frames), dtype=bool)
    mask[:, 3:6] = True
    with torch.no_grad():
        expected = pt_model(torch.tensor(inputs["input_values"]), mask_time_indices=torch.tensor(mask)).last_hidden_state.numpy()
    got = tf_model(tf.constant(inputs["input_values"]), mask_time_indices=tf.constant(mask)).last_hidden_state
    assert max_abs_diff(expected, got) < ATOL
    plain = tf_model(tf.constant(inputs["input_values"])).last_hidden_state
    assert max_abs_diff(plain, got) > 1e-3
    # Random SpecAugment in training only: inference stays deterministic.
    trained = tf_model(tf.constant(inputs["input_values"]), training=True).last_hidden_state
    assert trained.shape == plain.shape and max_abs_diff(plain, tf_model(tf.constant(inputs["input_values"])).last_hidden_state) == 0.0


def test_layer_weights_round_trip_h5(tmp_path):
    """``layer_weights`` belongs to the model, not a layer: saved in h5's top-level group and read back."""
    config = tiny_config(use_weighted_layer_sum=True)
    keras.utils.set_random_seed(0)
    model = TFWav2Vec2ForSequenceClassification(config)
    model.build_in_name_scope()
    model.layer_weights.assign([0.1, 2.0, -1.0])
    inputs = audio_inputs("Wav2Vec2ForSequenceClassification")
    for safe in (False, True):
        model.save_pretrained(tmp_path / str(safe), safe_serialization=safe)
        loaded, info = TFWav2Vec2ForSequenceClassification.from_pretrained(tmp_path / str(safe), output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"], info
        np.testing.assert_array_equal(loaded.layer_weights.numpy(), np.float32([0.1, 2.0, -1.0]))
        assert max_abs_diff(_tf_forward(model, inputs).logits, _tf_forward(loaded, inputs).logits) == 0.0


@pytest.mark.parametrize("weight_norm_names", ["parametrizations", "weight_g_v"])
def test_from_pt_and_pt_from_tf(tmp_path, weight_norm_names):
    """PyTorch checkpoints (either weight-norm spelling) load with from_pt=True; PyTorch loads tf_model.h5 with from_tf=True."""
    config = tiny_config(feat_extract_norm="layer", do_stable_layer_norm=True)
    pt_model, _ = _pair("Wav2Vec2ForCTC", config)
    inputs = audio_inputs("Wav2Vec2ForCTC", with_labels=True)
    expected = _pt_forward(pt_model, inputs)
    if weight_norm_names == "parametrizations":
        pt_model.save_pretrained(tmp_path / "pt")  # model.safetensors with PyTorch names
    else:
        state = {}
        for key, tensor in pt_model.state_dict().items():
            key = key.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1", "weight_v")
            state[key] = tensor.contiguous()
        (tmp_path / "pt").mkdir()
        config.save_pretrained(tmp_path / "pt")
        torch.save(state, tmp_path / "pt" / "pytorch_model.bin")
    tf_model, info = TFWav2Vec2ForCTC.from_pretrained(tmp_path / "pt", from_pt=True, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    _assert_same_outputs(expected, _tf_forward(tf_model, inputs), "from_pt")

    tf_model.save_pretrained(tmp_path / "tf")
    pt_back, info = modeling_wav2vec2.Wav2Vec2ForCTC.from_pretrained(tmp_path / "tf", from_tf=True, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    _assert_same_outputs(_pt_forward(pt_back, inputs), _tf_forward(tf_model, inputs), "PT from_tf")


def test_auto_classes_resolve_tf_wav2vec2(tmp_path):
    import polyformers

    config = tiny_config()
    keras.utils.set_random_seed(0)
    model = TFWav2Vec2ForCTC(config)
    model.build_in_name_scope()
    model.save_pretrained(tmp_path)
    loaded = polyformers.TFAutoModelForCTC.from_pretrained(tmp_path)
    assert type(loaded) is TFWav2Vec2ForCTC
    assert type(polyformers.TFAutoModel.from_pretrained(tmp_path)) is TFWav2Vec2Model
    assert type(polyformers.TFAutoModelForAudioClassification.from_config(config)) is TFWav2Vec2ForSequenceClassification
    pt = polyformers.AutoModelForCTC.from_pretrained(tmp_path, from_tf=True)
    assert type(pt) is modeling_wav2vec2.Wav2Vec2ForCTC
    inputs = audio_inputs("Wav2Vec2ForCTC")
    assert max_abs_diff(_pt_forward(pt, inputs).logits.numpy(), _tf_forward(loaded, inputs).logits) < ATOL


def test_input_errors():
    model = TFWav2Vec2Model(tiny_config())
    model.build_in_name_scope()
    with pytest.raises(ValueError, match=r"\(batch, samples\)"):
        model(tf.zeros((SAMPLES,)))
    with pytest.raises(ValueError, match="num_conv_pos_embedding_groups"):
        TFWav2Vec2Model(tiny_config(num_conv_pos_embedding_groups=3)).build_in_name_scope()
    with pytest.raises(ValueError, match="feat_extract_norm"):
        TFWav2Vec2Model(tiny_config(feat_extract_norm="batch"))
    with pytest.raises(ValueError, match="vocab_size"):
        TFWav2Vec2ForCTC(tiny_config(vocab_size=None))
