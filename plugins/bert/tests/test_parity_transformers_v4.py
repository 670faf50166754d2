"""Parity with Transformers 4.46.3 for what 5.x removed from BERT: relative positions, head_mask.

Runs in the bert-oracle-v4 tox env (its own environment: 4.46.3 pins an older hub and
tokenizers); skipped elsewhere.
"""

from __future__ import annotations

import pytest
import torch

from polyformers.testing.model_tester import max_abs_diff
from polyformers.testing.parity import ParityTesterMixin

from test_modeling_bert import transformers_major
from test_modeling_bert import CLASS_NAMES as CLASSES
from test_modeling_bert import TINY, labelled_inputs

if transformers_major() != 4:
    pytest.skip("these parity tests use Transformers 4.x (the bert-oracle-v4 tox env)", allow_module_level=True)


class TestBertParityV4(ParityTesterMixin):
    parity_classes = CLASSES
    parity_variants = {
        "relative_key": dict(TINY, position_embedding_type="relative_key"),
        "relative_key_query": dict(TINY, position_embedding_type="relative_key_query"),
        "absolute": dict(TINY),
    }
    compared_outputs = ("loss", *ParityTesterMixin.compared_outputs)

    def get_parity_inputs(self, class_name, config):
        return labelled_inputs(class_name, config)

    def forward_kwargs(self, variant):
        return {"output_hidden_states": True, "output_attentions": True}


@pytest.mark.parametrize("position_embedding_type", ["absolute", "relative_key", "relative_key_query"])
def test_head_mask_matches(tmp_path, position_embedding_type):
    import transformers

    import polyformers

    torch.manual_seed(0)
    kwargs = dict(TINY, position_embedding_type=position_embedding_type)
    theirs = transformers.BertModel(transformers.BertConfig(**kwargs)).eval()
    theirs.save_pretrained(tmp_path)
    ours = polyformers.BertModel.from_pretrained(tmp_path)
    inputs = labelled_inputs("BertModel", ours.config)
    for head_mask in (torch.tensor([1.0, 0.0, 1.0, 0.5]), torch.tensor([[1.0, 1.0, 0.0, 1.0], [0.0, 1.0, 1.0, 1.0]])):
        with torch.no_grad():
            a = ours(**inputs, head_mask=head_mask, output_attentions=True)
            b = theirs(**inputs, head_mask=head_mask, output_attentions=True)
        assert max_abs_diff(a.last_hidden_state, b.last_hidden_state) < 1e-5
        assert max_abs_diff(a.attentions, b.attentions) < 1e-5


@pytest.mark.parametrize("position_embedding_type", ["relative_key", "relative_key_query"])
def test_relative_decoder_with_cache_matches(tmp_path, position_embedding_type):
    import transformers

    import polyformers

    torch.manual_seed(0)
    config = transformers.BertConfig(**TINY, is_decoder=True, add_cross_attention=True, position_embedding_type=position_embedding_type)
    theirs = transformers.BertLMHeadModel(config).eval()
    theirs.save_pretrained(tmp_path)
    ours = polyformers.BertLMHeadModel.from_pretrained(tmp_path)
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(1, 99, (2, 6), generator=g)
    encoder_states = torch.randn(2, 5, 32, generator=g)
    kwargs = dict(encoder_hidden_states=encoder_states)
    with torch.no_grad():
        expected = theirs(ids, **kwargs).logits
        assert max_abs_diff(ours(ids, **kwargs).logits, expected) < 1e-5
        step = ours(ids[:, :5], **kwargs, use_cache=True)
        theirs_step = theirs(ids[:, :5], **kwargs, use_cache=True)
        last = ours(ids[:, 5:], **kwargs, past_key_values=step.past_key_values, use_cache=True)
        theirs_last = theirs(ids[:, 5:], **kwargs, past_key_values=theirs_step.past_key_values, use_cache=True)
    assert max_abs_diff(last.logits, theirs_last.logits) < 1e-5
