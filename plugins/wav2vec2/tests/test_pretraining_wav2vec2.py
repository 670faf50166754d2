"""Wav2Vec2ForPreTraining (PyTorch): the shared model tests, the helpers, init, and parity with Transformers 5.x."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polyformers.testing.model_tester import ModelTesterMixin, max_abs_diff
from polyformers_wav2vec2.configuration_wav2vec2 import Wav2Vec2Config
from polyformers_wav2vec2.modeling_wav2vec2 import (
    Wav2Vec2ForPreTraining,
    Wav2Vec2Model,
    _compute_mask_indices,
    _sample_negative_indices,
)

from test_modeling_wav2vec2 import BATCH, SAMPLES, TINY, _transformers

# masked_spec_embed only exists with mask_time_prob > 0; a small codebook of 2 groups of 10.
PRETRAINING = dict(
    TINY,
    mask_time_prob=0.2,
    mask_time_length=2,
    num_codevectors_per_group=10,
    num_codevector_groups=2,
    codevector_dim=8,
    proj_codevector_dim=8,
    num_negatives=5,
)
VARIANTS = {
    "group": dict(feat_extract_norm="group", do_stable_layer_norm=False),
    "layer-stable": dict(feat_extract_norm="layer", do_stable_layer_norm=True),
}
FRAMES = 265  # (1600 - 5) // 3 + 1 = 532, then (532 - 3) // 2 + 1


def pretraining_config(**overrides) -> Wav2Vec2Config:
    return Wav2Vec2Config(**{**PRETRAINING, **overrides})


def masks_and_negatives(seed: int = 0, num_negatives: int = 5) -> dict[str, torch.Tensor]:
    """What a data collator passes: numpy masks and negatives, made into tensors."""
    np.random.seed(seed)
    mask = _compute_mask_indices((BATCH, FRAMES), mask_prob=0.2, mask_length=2)
    negatives = _sample_negative_indices((BATCH, FRAMES), num_negatives, mask_time_indices=mask)
    return {"mask_time_indices": torch.tensor(mask), "sampled_negative_indices": torch.tensor(negatives, dtype=torch.long)}


def pretraining_inputs(with_losses: bool = True, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    inputs = {"input_values": torch.randn(BATCH, SAMPLES, generator=g)}
    return {**inputs, **masks_and_negatives(seed)} if with_losses else inputs


class TestWav2Vec2ForPreTraining(ModelTesterMixin):
    all_model_classes = (Wav2Vec2ForPreTraining,)
    base_model_class = Wav2Vec2Model

    def get_config(self):
        return pretraining_config()

    def get_inputs(self, config, model_class, with_labels=False):
        # Negatives index the flattened batch, so rows cannot be sliced apart: losses only with labels.
        return pretraining_inputs(with_losses=with_labels)

    def test_mismatched_sizes(self, tmp_path):
        pytest.skip("no vocabulary-sized weight; exercised on the CTC head in test_modeling_wav2vec2")


# --- the helpers ------------------------------------------------------------------------------------------


def test_negatives_are_other_masked_frames_of_the_same_row():
    np.random.seed(3)
    mask = _compute_mask_indices((BATCH, FRAMES), mask_prob=0.2, mask_length=2)
    negatives = _sample_negative_indices((BATCH, FRAMES), 7, mask_time_indices=mask)
    assert negatives.shape == (BATCH, FRAMES, 7) and negatives.dtype == np.int32
    for b in range(BATCH):
        frames = np.flatnonzero(mask[b])
        drawn = negatives[b][mask[b]] - b * FRAMES  # (masked frames, K)
        assert np.isin(drawn, frames).all(), "negatives must be masked frames of the same row"
        assert (drawn != frames[:, None]).all(), "a frame must not be its own negative"
        assert (negatives[b][~mask[b]] == b * FRAMES).all()


def test_helpers_match_transformers_under_the_same_seed():
    transformers = _transformers()
    from transformers.models.wav2vec2 import modeling_wav2vec2 as theirs

    attention_mask = torch.ones(BATCH, FRAMES, dtype=torch.long)
    attention_mask[-1, 200:] = 0
    for seed in range(3):
        np.random.seed(seed)
        ours_mask = _compute_mask_indices((BATCH, FRAMES), 0.3, 3, attention_mask, min_masks=2)
        ours_negatives = _sample_negative_indices((BATCH, FRAMES), 4, ours_mask)
        np.random.seed(seed)
        theirs_mask = theirs._compute_mask_indices((BATCH, FRAMES), 0.3, 3, attention_mask, min_masks=2)
        theirs_negatives = theirs._sample_negative_indices((BATCH, FRAMES), 4, theirs_mask)
        np.testing.assert_array_equal(ours_mask, theirs_mask)
        np.testing.assert_array_equal(ours_negatives, theirs_negatives)
    assert transformers


# --- the model ----------------------------------------------------------------------------------------------


def test_init_follows_transformers():
    torch.manual_seed(0)
    model = Wav2Vec2ForPreTraining(pretraining_config(num_codevectors_per_group=200, conv_dim=(64, 64)))
    weight_proj, codevectors = model.quantizer.weight_proj, model.quantizer.codevectors
    assert codevectors.shape == (1, 400, 4)
    assert abs(weight_proj.weight.std().item() - 1.0) < 0.05, "Gumbel logits start at unit scale"
    assert weight_proj.bias.abs().max() == 0
    assert 0.0 <= codevectors.min() and codevectors.max() < 1.0 and abs(codevectors.mean().item() - 0.5) < 0.05
    bound = 1 / 16**0.5  # torch's default Linear init: U(-1/sqrt(in), 1/sqrt(in)) for the bias
    assert model.project_hid.bias.abs().max() <= bound and model.project_hid.bias.abs().max() > 0


def test_missing_quantizer_is_initialised_like_a_fresh_one(tmp_path):
    """A backbone checkpoint leaves the quantizer and projections to init, one module at a time."""
    torch.manual_seed(0)
    Wav2Vec2Model(pretraining_config(conv_dim=(64, 64), num_codevectors_per_group=200)).save_pretrained(tmp_path)
    model, info = Wav2Vec2ForPreTraining.from_pretrained(tmp_path, output_loading_info=True)
    assert sorted(info["missing_keys"]) == sorted(
        ["project_hid.bias", "project_hid.weight", "project_q.bias", "project_q.weight", "quantizer.codevectors", "quantizer.weight_proj.bias", "quantizer.weight_proj.weight"]
    )
    assert abs(model.quantizer.weight_proj.weight.std().item() - 1.0) < 0.05
    assert 0.0 <= model.quantizer.codevectors.min() and model.quantizer.codevectors.max() < 1.0
    assert model.project_hid.bias.abs().max() > 0, "project_hid keeps torch's default init"


def test_training_step_gives_finite_grads_and_temperature_is_used():
    torch.manual_seed(0)
    model = Wav2Vec2ForPreTraining(pretraining_config()).train()
    model.set_gumbel_temperature(0.5)
    assert model.quantizer.temperature == 0.5
    outputs = model(**pretraining_inputs())
    assert torch.isfinite(outputs.loss) and outputs.loss > 0
    outputs.loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values()), [n for n, g in grads.items() if g is None]
    assert grads["quantizer.weight_proj.weight"].abs().sum() > 0, "the straight-through Gumbel softmax passes gradients"
    # Training perplexity is over soft probabilities: between 1 and the codebook size per group.
    assert 1.0 < outputs.codevector_perplexity < 2 * 10


def test_losses_only_with_negatives_and_clear_errors():
    torch.manual_seed(0)
    model = Wav2Vec2ForPreTraining(pretraining_config()).eval()
    inputs = pretraining_inputs()
    with torch.no_grad():
        outputs = model(inputs["input_values"], mask_time_indices=inputs["mask_time_indices"])
        as_tuple = model(**inputs, return_dict=False)
    assert outputs.loss is None and outputs.contrastive_loss is None and outputs.projected_states.shape == (BATCH, FRAMES, 8)
    assert len(as_tuple) == 6  # loss, two projections, perplexity, contrastive and diversity losses
    with pytest.raises(ValueError, match="without mask_time_indices"):
        model(inputs["input_values"], sampled_negative_indices=inputs["sampled_negative_indices"])
    with pytest.raises(ValueError, match="mask_time_prob"):
        Wav2Vec2ForPreTraining(pretraining_config(mask_time_prob=0.0))(**inputs)
    with pytest.raises(ValueError, match="codevector_dim \\(9\\)"):
        Wav2Vec2ForPreTraining(pretraining_config(codevector_dim=9))


def test_auto_model_for_pretraining_resolves(tmp_path):
    from polyformers import AutoModelForPreTraining

    torch.manual_seed(0)
    Wav2Vec2ForPreTraining(pretraining_config()).save_pretrained(tmp_path)
    assert type(AutoModelForPreTraining.from_pretrained(tmp_path)) is Wav2Vec2ForPreTraining


# --- parity with Transformers 5.x ------------------------------------------------------------------------

COMPARED = ("loss", "contrastive_loss", "diversity_loss", "projected_states", "projected_quantized_states", "codevector_perplexity", "hidden_states")


def _compare(ours, theirs) -> dict[str, float]:
    diffs = {k: max_abs_diff(ours[k], theirs[k]) for k in COMPARED}
    assert max(diffs.values()) < 1e-5, f"outputs differ from Transformers: {diffs}"
    return diffs


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_parity_both_ways(tmp_path, variant):
    transformers = _transformers()
    kwargs = {**PRETRAINING, **VARIANTS[variant]}
    inputs = pretraining_inputs()
    inputs["attention_mask"] = torch.ones(BATCH, SAMPLES, dtype=torch.long)
    inputs["attention_mask"][-1, 1200:] = 0

    torch.manual_seed(0)
    theirs = transformers.Wav2Vec2ForPreTraining(transformers.Wav2Vec2Config(**kwargs)).eval()
    theirs.save_pretrained(tmp_path / "theirs")
    ours, info = Wav2Vec2ForPreTraining.from_pretrained(tmp_path / "theirs", output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == [], info
    with torch.no_grad():
        out_ours, out_theirs = ours(**inputs, output_hidden_states=True), theirs(**inputs, output_hidden_states=True)
    _compare(out_ours, out_theirs)
    assert out_ours.contrastive_loss > 0 and out_ours.diversity_loss > 0

    torch.manual_seed(1)
    ours = Wav2Vec2ForPreTraining(Wav2Vec2Config(**kwargs)).eval()
    ours.save_pretrained(tmp_path / "ours")
    theirs, info = transformers.Wav2Vec2ForPreTraining.from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    theirs.eval()
    with torch.no_grad():
        _compare(ours(**inputs, output_hidden_states=True), theirs(**inputs, output_hidden_states=True))


def test_contrastive_logits_match_transformers():
    transformers = _transformers()
    g = torch.Generator().manual_seed(0)
    target, negatives, predicted = torch.randn(1, 2, 3, 4, generator=g), torch.randn(5, 2, 3, 4, generator=g), torch.randn(2, 3, 4, generator=g)
    ours = Wav2Vec2ForPreTraining.compute_contrastive_logits(target, negatives, predicted, 0.1)
    theirs = transformers.Wav2Vec2ForPreTraining.compute_contrastive_logits(target, negatives, predicted, 0.1)
    assert ours.shape == (6, 2, 3) and max_abs_diff(ours, theirs) == 0.0
