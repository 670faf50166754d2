"""Wav2Vec2 (PyTorch): the shared model tests on a tiny config, then parity with Transformers 5.x."""

from __future__ import annotations

import pytest
import torch

from polyformers.testing.model_tester import ConfigTesterMixin, ModelTesterMixin, max_abs_diff
from polyformers_wav2vec2.configuration_wav2vec2 import Wav2Vec2Config
from polyformers_wav2vec2.modeling_wav2vec2 import (
    Wav2Vec2ForAudioFrameClassification,
    Wav2Vec2ForCTC,
    Wav2Vec2ForSequenceClassification,
    Wav2Vec2ForXVector,
    Wav2Vec2Model,
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
    tdnn_dim=(8, 8),
    tdnn_kernel=(3, 1),
    tdnn_dilation=(1, 2),
    xvector_output_dim=8,
    layerdrop=0.0,
    mask_time_prob=0.0,
)
VARIANTS = {
    "group": dict(feat_extract_norm="group", do_stable_layer_norm=False),
    "layer": dict(feat_extract_norm="layer", do_stable_layer_norm=False, conv_bias=True),
    "layer-stable": dict(feat_extract_norm="layer", do_stable_layer_norm=True),
    "group-stable-weighted": dict(feat_extract_norm="group", do_stable_layer_norm=True, use_weighted_layer_sum=True),
}
CLASSES = (Wav2Vec2Model, Wav2Vec2ForCTC, Wav2Vec2ForSequenceClassification, Wav2Vec2ForAudioFrameClassification, Wav2Vec2ForXVector)
BATCH, SAMPLES = 2, 1600


def tiny_config(**overrides) -> Wav2Vec2Config:
    return Wav2Vec2Config(**{**TINY, **overrides})


def audio_inputs(config, model_class: type, with_labels: bool = False, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    inputs = {"input_values": torch.randn(BATCH, SAMPLES, generator=g), "attention_mask": torch.ones(BATCH, SAMPLES, dtype=torch.long)}
    inputs["attention_mask"][-1, 1200:] = 0  # the second row is padded
    inputs["input_values"][-1, 1200:] = 0.0
    if not with_labels:
        return inputs
    frames = 265  # (1600 - 5) // 3 + 1 = 532, then (532 - 3) // 2 + 1
    if model_class is Wav2Vec2ForCTC:
        labels = torch.randint(1, config.vocab_size, (BATCH, 6), generator=g)
        labels[-1, 4:] = -100
        inputs["labels"] = labels
    elif model_class in (Wav2Vec2ForSequenceClassification, Wav2Vec2ForXVector):
        inputs["labels"] = torch.randint(0, config.num_labels, (BATCH,), generator=g)
    elif model_class is Wav2Vec2ForAudioFrameClassification:
        inputs["labels"] = torch.nn.functional.one_hot(torch.randint(0, config.num_labels, (BATCH, frames), generator=g), config.num_labels)
    return inputs


class TestWav2Vec2Model(ModelTesterMixin):
    all_model_classes = CLASSES
    base_model_class = Wav2Vec2Model
    # The AM-softmax weight only sees a gradient with labels; the x-vector classifier has none without.
    params_without_grad = {"Wav2Vec2Model": [r"masked_spec_embed"]}

    def get_config(self):
        return tiny_config()

    def get_inputs(self, config, model_class, with_labels=False):
        return audio_inputs(config, model_class, with_labels)

    def test_batching_equivalence(self):
        """The padded row alone, trimmed to its length, gives its frames' outputs inside the batch.

        Only for ``feat_extract_norm="layer"``: GroupNorm normalises over time, padding included,
        which is why Transformers' group-norm checkpoints are meant to be run without a mask.
        """
        config = tiny_config(**VARIANTS["layer"])
        model = self.make_model(Wav2Vec2Model, config)
        inputs = self.get_inputs(config, Wav2Vec2Model)
        with torch.no_grad():
            batched = model(**inputs).last_hidden_state
            alone = model(inputs["input_values"][-1:, :1200]).last_hidden_state
        assert max_abs_diff(batched[-1:, : alone.shape[1]], alone) < 1e-5

    def test_mismatched_sizes(self, tmp_path):
        pytest.skip("exercised on vocab_size by the CTC head only; see test_ctc_vocab_mismatch")

    def test_attention_and_hidden_state_outputs(self):
        for model_class in self._each_class():
            config = self.get_config()
            model = self.make_model(model_class, config)
            outputs = self.run(model, self.get_inputs(config, model_class), output_attentions=True, output_hidden_states=True)
            assert len(outputs.attentions) == len(outputs.hidden_states) - 1 == config.num_hidden_layers
            attention = outputs.attentions[0]  # (B, H, T, T)
            assert attention.shape == (BATCH, config.num_attention_heads, 265, 265)
            torch.testing.assert_close(attention.sum(-1), torch.ones_like(attention.sum(-1)))
            assert attention[-1, :, :, 200:].abs().max() == 0, "padded frames must get no attention"


class TestWav2Vec2Config(ConfigTesterMixin):
    config_class = Wav2Vec2Config
    config_kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in TINY.items()}  # JSON keeps lists

    def test_bad_values_name_the_fix(self):
        with pytest.raises(ValueError, match="feat_extract_norm"):
            Wav2Vec2Config(feat_extract_norm="batch")
        with pytest.raises(ValueError, match="len\\(conv_dim\\)=2"):
            Wav2Vec2Config(conv_dim=(4, 4), conv_kernel=(3,), conv_stride=(1,))
        assert Wav2Vec2Config().inputs_to_logits_ratio == 320


def test_ctc_vocab_mismatch(tmp_path):
    from polyformers.errors import WeightShapeMismatchError

    tiny_config().save_pretrained(tmp_path)
    torch.manual_seed(0)
    Wav2Vec2ForCTC(tiny_config()).save_pretrained(tmp_path)
    with pytest.raises(WeightShapeMismatchError, match="ignore_mismatched_sizes=True"):
        Wav2Vec2ForCTC.from_pretrained(tmp_path, config=tiny_config(vocab_size=15))


def test_spec_augment_only_in_training():
    config = tiny_config(mask_time_prob=0.5, mask_time_length=2)
    model = Wav2Vec2Model(config).eval()
    inputs = audio_inputs(config, Wav2Vec2Model)
    with torch.no_grad():
        a, b = model(**inputs).last_hidden_state, model(**inputs).last_hidden_state
    assert max_abs_diff(a, b) == 0.0
    model.train()
    model.config.hidden_dropout = 0.0
    torch.manual_seed(0)
    with torch.no_grad():
        masked = model.feature_projection(model.feature_extractor(inputs["input_values"]).transpose(1, 2))[0]
        out = model._mask_hidden_states(masked.clone())
    rows_masked = (out == model.masked_spec_embed).all(-1)
    assert rows_masked.any(), "SpecAugment must mask some frames in training"


# --- parity with Transformers 5.x ------------------------------------------------------------------------

PARITY_CLASSES = [c.__name__ for c in CLASSES]
PARITY_CASES = [(c, v) for c in PARITY_CLASSES for v in VARIANTS]


def _transformers():
    transformers = pytest.importorskip("transformers")
    if int(transformers.__version__.split(".")[0]) != 5:
        pytest.skip("these parity tests use Transformers 5.x")
    return transformers


def _compare(ours, theirs, class_name: str) -> float:
    keys = ("loss", "logits", "embeddings", "last_hidden_state", "extract_features", "hidden_states")
    diffs = {k: max_abs_diff(ours[k], theirs[k]) for k in keys if ours.get(k) is not None and theirs.get(k) is not None}
    assert diffs and max(diffs.values()) < 1e-5, f"{class_name}: outputs differ from Transformers: {diffs}"
    return max(diffs.values())


@pytest.mark.parametrize("class_name,variant", PARITY_CASES, ids=[f"{c}-{v}" for c, v in PARITY_CASES])
def test_parity_both_ways(tmp_path, class_name, variant):
    transformers = _transformers()
    import polyformers_wav2vec2.modeling_wav2vec2 as ours_module

    kwargs = {**TINY, **VARIANTS[variant]}
    theirs_class, ours_class = getattr(transformers, class_name), getattr(ours_module, class_name)
    inputs = audio_inputs(Wav2Vec2Config(**kwargs), ours_class, with_labels=True)
    if class_name == "Wav2Vec2Model":
        inputs.pop("labels", None)

    torch.manual_seed(0)
    theirs = theirs_class(transformers.Wav2Vec2Config(**kwargs)).eval()
    theirs.save_pretrained(tmp_path / "theirs")
    ours, info = ours_class.from_pretrained(tmp_path / "theirs", output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == [], info
    with torch.no_grad():
        _compare(ours(**inputs, output_hidden_states=True), theirs(**inputs, output_hidden_states=True), class_name)

    torch.manual_seed(1)
    ours = ours_class(Wav2Vec2Config(**kwargs)).eval()
    ours.save_pretrained(tmp_path / "ours")
    theirs, info = theirs_class.from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert not info["missing_keys"] and not info["mismatched_keys"], info
    theirs.eval()
    with torch.no_grad():
        _compare(ours(**inputs, output_hidden_states=True), theirs(**inputs, output_hidden_states=True), class_name)


@pytest.mark.parametrize("reduction,zero_infinity", [("sum", False), ("mean", True)])
def test_ctc_loss_matches(tmp_path, reduction, zero_infinity):
    transformers = _transformers()
    kwargs = {**TINY, "ctc_loss_reduction": reduction, "ctc_zero_infinity": zero_infinity}
    torch.manual_seed(0)
    theirs = transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(**kwargs)).eval()
    theirs.save_pretrained(tmp_path)
    ours = Wav2Vec2ForCTC.from_pretrained(tmp_path)
    inputs = audio_inputs(ours.config, Wav2Vec2ForCTC, with_labels=True)
    with torch.no_grad():
        a, b = ours(**inputs), theirs(**inputs)
    assert max_abs_diff(a.loss, b.loss) < 1e-5 and max_abs_diff(a.logits, b.logits) < 1e-5


def test_old_weight_norm_names_load(tmp_path):
    """Checkpoints from before torch's parametrizations hold ``weight_g``/``weight_v``."""
    transformers = _transformers()
    from safetensors.torch import load_file, save_file

    torch.manual_seed(0)
    theirs = transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(**TINY)).eval()
    theirs.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    prefix = "encoder.pos_conv_embed.conv."
    new_names = {prefix + "parametrizations.weight.original0": "weight_g", prefix + "parametrizations.weight.original1": "weight_v"}
    if not any(k in state for k in new_names):  # Transformers may already write the old names
        assert prefix + "weight_g" in state
    state = {(prefix + new_names[k] if k in new_names else k): v for k, v in state.items()}
    assert prefix + "weight_g" in state and prefix + "weight_v" in state
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    ours, info = Wav2Vec2Model.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    inputs = audio_inputs(ours.config, Wav2Vec2Model)
    with torch.no_grad():
        assert max_abs_diff(ours(**inputs).last_hidden_state, theirs(**inputs).last_hidden_state) < 1e-5
