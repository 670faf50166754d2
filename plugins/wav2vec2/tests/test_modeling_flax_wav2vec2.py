"""Wav2Vec2 in Flax: the shared Flax model tests on a tiny config, then equivalence with our PyTorch model.

Every head in every variant (GroupNorm / LayerNorm+conv bias / pre-LayerNorm with attention
adapters / conv adapter) is compared to our PyTorch Wav2Vec2 on the same weights, crossing through
files both ways: main output, hidden states and attentions within 1e-5.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from polyformers.conversion import flatten_dict, flax_key_to_pt, to_pt_state
from polyformers.testing.flax_model_tester import FlaxModelTesterMixin, flat_params, max_abs_diff
from polyformers_wav2vec2.configuration_wav2vec2 import Wav2Vec2Config
from polyformers_wav2vec2.modeling_flax_wav2vec2 import (
    FlaxWav2Vec2ForCTC,
    FlaxWav2Vec2ForSequenceClassification,
    FlaxWav2Vec2Model,
)

TINY = dict(
    vocab_size=12,
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=20,
    conv_dim=(16, 16),
    conv_kernel=(5, 3),
    conv_stride=(3, 2),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
    classifier_proj_size=8,
    num_labels=3,
    layerdrop=0.0,
    mask_time_prob=0.0,
)
VARIANTS = {
    "group": dict(feat_extract_norm="group", do_stable_layer_norm=False),
    "layer-bias": dict(feat_extract_norm="layer", do_stable_layer_norm=False, conv_bias=True),
    "layer-stable": dict(feat_extract_norm="layer", do_stable_layer_norm=True, adapter_attn_dim=6, use_weighted_layer_sum=True),
    "adapter": dict(feat_extract_norm="layer", do_stable_layer_norm=True, add_adapter=True, output_hidden_size=8, num_adapter_layers=2),
}
ALL_CLASSES = (FlaxWav2Vec2ForCTC, FlaxWav2Vec2Model, FlaxWav2Vec2ForSequenceClassification)
BATCH, SAMPLES = 2, 1600
ATOL = 1e-5


def tiny_config(**overrides) -> Wav2Vec2Config:
    return Wav2Vec2Config(**{**TINY, **overrides})


def audio_inputs(batch: int = BATCH, samples: int = SAMPLES, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.RandomState(seed)
    mask = np.ones((batch, samples), dtype=np.int64)
    mask[-1, samples * 2 // 3 :] = 0  # the last row is padded
    return {"input_values": rng.randn(batch, samples).astype(np.float32), "attention_mask": mask}


class TestFlaxWav2Vec2Models(FlaxModelTesterMixin):
    all_model_classes = ALL_CLASSES
    base_model_class = FlaxWav2Vec2Model
    train_model_class = FlaxWav2Vec2ForSequenceClassification

    def get_config(self):
        # A wider initialisation than the default 0.02 lets the 25-step training test fit its batch.
        return tiny_config(initializer_range=0.1)

    def get_inputs(self, config, model_class):
        return audio_inputs()

    def get_train_batch(self, config, model_class):
        # Tones of one frequency per class: learnable in a few steps.
        t = np.arange(800) / 800
        frequencies = np.array([5.0, 40.0, 160.0, 40.0])
        values = np.sin(2 * np.pi * frequencies[:, None] * t[None, :]).astype(np.float32)
        return {"input_values": values, "attention_mask": np.ones(values.shape, dtype=np.int64)}, np.array([0, 1, 2, 1])


# --- model-specific behaviour -------------------------------------------------------------------------


def test_param_tree_matches_transformers_layout():
    """The names Transformers 4.x's FlaxWav2Vec2ForCTC has for this config (printed from its params)."""
    config = tiny_config(feat_extract_norm="layer", conv_bias=True, do_stable_layer_norm=True, num_hidden_layers=1, mask_time_prob=0.05)
    shapes = {"/".join(k): tuple(v.shape) for k, v in flat_params(FlaxWav2Vec2ForCTC(config).params).items()}
    assert shapes["wav2vec2/masked_spec_embed"] == (16,)
    assert shapes["wav2vec2/feature_extractor/conv_layers/0/conv/kernel"] == (5, 1, 16)
    assert shapes["wav2vec2/feature_extractor/conv_layers/1/layer_norm/scale"] == (16,)
    assert shapes["wav2vec2/encoder/pos_conv_embed/conv/weight_v"] == (16, 8, 16)
    assert shapes["wav2vec2/encoder/pos_conv_embed/conv/weight_g"] == (1, 1, 16)
    assert shapes["wav2vec2/encoder/layers/0/attention/q_proj/kernel"] == (16, 16)
    assert shapes["wav2vec2/encoder/layers/0/feed_forward/intermediate_dense/kernel"] == (16, 20)
    assert shapes["wav2vec2/encoder/layer_norm/scale"] == (16,)
    assert shapes["lm_head/kernel"] == (16, 12)
    assert len(shapes) == 36  # Transformers: 38 with the conv adapter (its 2 parameters)


def test_group_norm_variant_params():
    shapes = {"/".join(k): v.shape for k, v in flat_params(FlaxWav2Vec2Model(tiny_config()).params).items()}
    assert shapes["feature_extractor/conv_layers/0/layer_norm/scale"] == (16,)
    assert "feature_extractor/conv_layers/1/layer_norm/scale" not in shapes
    assert "feature_extractor/conv_layers/0/conv/bias" not in shapes  # conv_bias=False


def test_hidden_states_convention_stable():
    """Transformers 5.x / our PyTorch: with do_stable_layer_norm, the last hidden state is before the final LayerNorm."""
    config = tiny_config(do_stable_layer_norm=True, feat_extract_norm="layer")
    out = FlaxWav2Vec2Model(config)(**audio_inputs(), output_hidden_states=True)
    assert len(out.hidden_states) == config.num_hidden_layers + 1
    assert max_abs_diff(out.hidden_states[-1], out.last_hidden_state) > 1e-2


def test_output_lengths_and_return_tuple():
    model = FlaxWav2Vec2ForCTC(tiny_config(add_adapter=True, num_adapter_layers=2))
    inputs = audio_inputs()
    frames = model._get_feat_extract_output_lengths(SAMPLES)
    out = model(**inputs)
    assert out.logits.shape == (BATCH, frames, 12)
    as_tuple = model(**inputs, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 1


def test_weighted_layer_sum_returns_hidden_states():
    model = FlaxWav2Vec2ForSequenceClassification(tiny_config(use_weighted_layer_sum=True))
    out = model(**audio_inputs())
    assert out.logits.shape == (BATCH, 3) and len(out.hidden_states) == 3
    assert model.params["layer_weights"].shape == (3,)


def test_freeze_feature_encoder_stops_gradients():
    model = FlaxWav2Vec2ForSequenceClassification(tiny_config())
    inputs = audio_inputs()

    def loss(params, freeze):
        return model(**inputs, params=params, freeze_feature_encoder=freeze).logits.sum()

    frozen = flatten_dict(jax.grad(loss)(model.params, True))
    free = flatten_dict(jax.grad(loss)(model.params, False))
    conv = ("wav2vec2", "feature_extractor", "conv_layers", "0", "conv", "kernel")
    assert float(jnp.abs(frozen[conv]).max()) == 0.0 and float(jnp.abs(free[conv]).max()) > 0.0
    assert float(jnp.abs(frozen[("classifier", "kernel")]).max()) > 0.0


def test_layerdrop_in_training_only():
    model = FlaxWav2Vec2Model(tiny_config(layerdrop=0.99, hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0))
    inputs = audio_inputs()
    evaluated = model(**inputs, output_hidden_states=True)
    trained = model(**inputs, output_hidden_states=True, train=True, dropout_rng=jax.random.PRNGKey(0))
    # Nearly every layer is dropped: each layer passes its input through.
    assert max_abs_diff(trained.hidden_states[0], trained.hidden_states[-1]) == 0.0
    assert max_abs_diff(evaluated.hidden_states[0], evaluated.hidden_states[-1]) > 1e-3


def test_bad_inputs_give_clear_errors():
    model = FlaxWav2Vec2Model(tiny_config())
    with pytest.raises(ValueError, match=r"\(batch, samples\)"):
        model(np.zeros((1, 2, SAMPLES), dtype=np.float32))
    with pytest.raises(ValueError, match="too few"):
        model(np.zeros((1, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="attention_mask must have the shape"):
        model(np.zeros((1, SAMPLES), dtype=np.float32), attention_mask=np.ones((1, 10)))
    with pytest.raises(ValueError, match="masked_spec_embed"):
        model(np.zeros((1, SAMPLES), dtype=np.float32), mask_time_indices=np.zeros((1, model._get_feat_extract_output_lengths(SAMPLES)), bool))
    masking = FlaxWav2Vec2Model(tiny_config(mask_time_prob=0.05))
    with pytest.raises(ValueError, match=r"\(batch, frames\)"):
        masking(np.zeros((1, SAMPLES), dtype=np.float32), mask_time_indices=np.zeros((1, 3), bool))
    with pytest.raises(ValueError, match="vocab_size"):
        FlaxWav2Vec2ForCTC(tiny_config(vocab_size=None))
    with pytest.raises(ValueError, match="add_adapter"):
        FlaxWav2Vec2ForSequenceClassification(tiny_config(add_adapter=True))
    with pytest.raises(ValueError, match="num_conv_pos_embedding_groups"):
        FlaxWav2Vec2Model(tiny_config(num_conv_pos_embedding_groups=3))
    with pytest.raises(ValueError, match="input_shape"):
        FlaxWav2Vec2Model(tiny_config(), input_shape=(1, 4))


def test_auto_classes_resolve_flax_wav2vec2(tmp_path):
    import polyformers

    FlaxWav2Vec2ForCTC(tiny_config()).save_pretrained(tmp_path)
    assert type(polyformers.FlaxAutoModelForCTC.from_pretrained(tmp_path)) is FlaxWav2Vec2ForCTC
    assert type(polyformers.FlaxAutoModel.from_pretrained(tmp_path)) is FlaxWav2Vec2Model
    assert type(polyformers.FlaxAutoModelForAudioClassification.from_pretrained(tmp_path)) is FlaxWav2Vec2ForSequenceClassification
    assert polyformers.FlaxWav2Vec2ForCTC is FlaxWav2Vec2ForCTC


# --- equivalence with our PyTorch Wav2Vec2 -------------------------------------------------------------

torch = pytest.importorskip("torch")
from polyformers_wav2vec2 import modeling_wav2vec2  # noqa: E402


def pt_class_of(flax_class: type) -> type:
    return getattr(modeling_wav2vec2, flax_class.__name__.removeprefix("Flax"))


def pt_model(flax_class: type, config: Wav2Vec2Config, seed: int = 0):
    torch.manual_seed(seed)
    return pt_class_of(flax_class)(config).eval()


def run_pt(model, inputs: dict[str, np.ndarray], **kwargs):
    with torch.no_grad():
        return model(**{k: torch.from_numpy(v) for k, v in inputs.items()}, output_hidden_states=True, output_attentions=True, **kwargs)


def compare(flax_out, pt_out) -> float:
    """Main output, hidden states and attentions: the worst difference, asserted within ATOL."""
    main = "logits" if "logits" in pt_out else "last_hidden_state"
    diffs = {main: max_abs_diff(flax_out[main], pt_out[main].numpy())}
    for key in ("hidden_states", "attentions", "extract_features"):
        if pt_out.get(key) is not None:
            diffs[key] = max_abs_diff(flax_out[key], tuple(t.numpy() for t in pt_out[key]) if isinstance(pt_out[key], tuple) else pt_out[key].numpy())
    assert max(diffs.values()) <= ATOL, diffs
    return max(diffs.values())


EQUIVALENCE_CASES = [(c, v) for c in ALL_CLASSES for v in VARIANTS if not (c is FlaxWav2Vec2ForSequenceClassification and v == "adapter")]
EQUIVALENCE_CASES.append((FlaxWav2Vec2ForSequenceClassification, "group-weighted"))
VARIANTS["group-weighted"] = dict(feat_extract_norm="group", use_weighted_layer_sum=True, classifier_proj_size=5)


@pytest.mark.parametrize("flax_class,variant", EQUIVALENCE_CASES, ids=[f"{c.__name__}-{v}" for c, v in EQUIVALENCE_CASES])
def test_equivalence_with_pytorch_through_files(tmp_path, flax_class, variant):
    """PyTorch -> Flax through model.safetensors, Flax -> PyTorch through flax_model.msgpack (from_flax=True):
    every output within 1e-5, clean loading reports both ways."""
    config = tiny_config(**VARIANTS[variant])
    inputs = audio_inputs()
    pt = pt_model(flax_class, config)
    pt.save_pretrained(tmp_path / "pt")
    flax_model, info = flax_class.from_pretrained(tmp_path / "pt", output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == [], info
    compare(flax_model(**inputs, output_hidden_states=True, output_attentions=True), run_pt(pt, inputs))

    flax_model = flax_class(config, seed=1)
    flax_model.save_pretrained(tmp_path / "flax")
    pt, info = pt_class_of(flax_class).from_pretrained(tmp_path / "flax", from_flax=True, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == [], info
    compare(flax_model(**inputs, output_hidden_states=True, output_attentions=True), run_pt(pt.eval(), inputs))


@pytest.mark.parametrize("names", ["parametrizations", "weight_g_weight_v"])
def test_pytorch_weight_norm_names_both_load(tmp_path, names):
    """PyTorch checkpoints name the positional conv's weight norm either way; pytorch_model.bin and in-memory state dicts."""
    config = tiny_config()
    pt = pt_model(FlaxWav2Vec2ForCTC, config)
    state = pt.state_dict()
    if names == "weight_g_weight_v":
        state = {k.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1", "weight_v"): v for k, v in state.items()}
    assert any(k.endswith("pos_conv_embed.conv." + ("weight_g" if names == "weight_g_weight_v" else "parametrizations.weight.original0")) for k in state)
    inputs = audio_inputs()
    expected = run_pt(pt, inputs)
    in_memory, info = FlaxWav2Vec2ForCTC.from_pretrained(None, config=config, state_dict=state, from_pt=True, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [], info
    compare(in_memory(**inputs, output_hidden_states=True, output_attentions=True), expected)

    config.save_pretrained(tmp_path)
    torch.save(state, tmp_path / "pytorch_model.bin")
    with pytest.raises(OSError, match="from_pt=True"):
        FlaxWav2Vec2ForCTC.from_pretrained(tmp_path)
    from_bin = FlaxWav2Vec2ForCTC.from_pretrained(tmp_path, from_pt=True)
    compare(from_bin(**inputs, output_hidden_states=True, output_attentions=True), expected)


def test_flax_params_to_pytorch_in_memory():
    config = tiny_config(do_stable_layer_norm=True, feat_extract_norm="layer")
    flax_model = FlaxWav2Vec2ForCTC(config, seed=2)
    state = {k: torch.from_numpy(np.array(v)) for k, v in to_pt_state(flat_params(flax_model.params), flax_key_to_pt).items()}
    pt = modeling_wav2vec2.Wav2Vec2ForCTC.from_pretrained(None, config=config, state_dict=state)
    inputs = audio_inputs()
    compare(flax_model(**inputs, output_hidden_states=True, output_attentions=True), run_pt(pt.eval(), inputs))


def test_mask_time_indices_match_pytorch():
    config = tiny_config(mask_time_prob=0.05)
    pt = pt_model(FlaxWav2Vec2Model, config)
    flax_model = FlaxWav2Vec2Model.from_pretrained(None, config=config, state_dict=pt.state_dict(), from_pt=True)
    inputs = audio_inputs()
    frames = flax_model._get_feat_extract_output_lengths(SAMPLES)
    mask = np.zeros((BATCH, frames), dtype=bool)
    mask[0, 3:9] = mask[1, 20:25] = True
    with torch.no_grad():
        expected = pt(**{k: torch.from_numpy(v) for k, v in inputs.items()}, mask_time_indices=torch.from_numpy(mask))
    out = flax_model(**inputs, mask_time_indices=mask)
    assert max_abs_diff(out.last_hidden_state, expected.last_hidden_state.numpy()) <= ATOL
    assert max_abs_diff(out.last_hidden_state, flax_model(**inputs).last_hidden_state) > 1e-3, "the mask must change the output"


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_ctc_loss_matches_pytorch(reduction):
    config = tiny_config(ctc_loss_reduction=reduction)
    pt = pt_model(FlaxWav2Vec2ForCTC, config)
    flax_model = FlaxWav2Vec2ForCTC.from_pretrained(None, config=config, state_dict=pt.state_dict(), from_pt=True)
    inputs = audio_inputs()
    labels = np.array([[3, 4, 4, 5, 7], [2, 9, 1, -100, -100]])
    with torch.no_grad():
        expected = pt(**{k: torch.from_numpy(v) for k, v in inputs.items()}, labels=torch.from_numpy(labels)).loss.item()
    out = flax_model(**inputs, labels=labels)
    assert abs(float(out.loss) - expected) <= 1e-4 * max(1.0, abs(expected)), (float(out.loss), expected)
    assert dataclasses.fields(out)[0].name == "loss" and out.to_tuple()[0] is out.loss
    with pytest.raises(ValueError, match="below vocab_size"):
        flax_model(**inputs, labels=np.array([[12, 1]]))


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("zero_infinity", [False, True])
def test_ctc_loss_helper_matches_torch(reduction, zero_infinity):
    """The helper against F.ctc_loss on random logits; the second row cannot be aligned (4, 4, 4 needs 5 frames with its blanks, it has 4)."""
    from polyformers_wav2vec2.modeling_flax_wav2vec2 import ctc_loss

    rng = np.random.RandomState(0)
    logits = rng.randn(3, 9, 6).astype(np.float32)
    lengths = np.array([9, 4, 7])
    labels = np.array([[1, 2, 2, 3], [4, 4, 4, -100], [5, 1, -100, -100]])
    log_probs = torch.log_softmax(torch.from_numpy(logits), -1).transpose(0, 1)
    mask = torch.from_numpy(labels >= 0)
    expected = torch.nn.functional.ctc_loss(
        log_probs, torch.from_numpy(labels)[mask], torch.from_numpy(lengths), mask.sum(-1), blank=0, reduction=reduction, zero_infinity=zero_infinity
    ).item()
    result = float(ctc_loss(jnp.asarray(logits), jnp.asarray(lengths), jnp.asarray(labels), 0, reduction, zero_infinity))
    if not zero_infinity:
        assert expected == result == float("inf")
    else:
        assert abs(result - expected) <= 1e-4 * abs(expected), (result, expected)
