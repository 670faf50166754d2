"""Parity with Transformers 5.x (the PyTorch oracle): checkpoints cross both ways, outputs match.

What 5.x removed from BERT (relative position embeddings, head_mask) is compared with 4.46.3 in
test_parity_transformers_v4.py, which the oracle-v4 tox env runs.
"""

from __future__ import annotations

import pytest
import torch

from polyformers.testing.model_tester import max_abs_diff
from polyformers.testing.parity import ParityTesterMixin

from test_modeling_bert import CLASS_NAMES as CLASSES
from test_modeling_bert import TINY, labelled_inputs

pytest.importorskip("transformers")
from test_modeling_bert import transformers_major  # noqa: E402

if transformers_major() != 5:
    pytest.skip("these parity tests use Transformers 5.x", allow_module_level=True)

class TestBertParity(ParityTesterMixin):
    parity_classes = CLASSES
    parity_variants = {
        "tiny": dict(TINY),
        "gelu_new-untied": dict(TINY, hidden_act="gelu_new", tie_word_embeddings=False, layer_norm_eps=1e-5),
        "relu-3layers": dict(TINY, hidden_act="relu", num_hidden_layers=3, classifier_dropout=0.3),
    }
    compared_outputs = ("loss", *ParityTesterMixin.compared_outputs)

    def get_parity_inputs(self, class_name, config):
        return labelled_inputs(class_name, config)


@pytest.mark.parametrize("problem_type,labels", [
    ("regression", torch.tensor([[0.5], [-1.0], [2.0]])),
    ("multi_label_classification", torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])),
    ("single_label_classification", torch.tensor([0, 2, 1])),
])
def test_classification_problem_types_match(tmp_path, problem_type, labels):
    import transformers

    import polyformers

    num_labels = 1 if problem_type == "regression" else 3
    torch.manual_seed(0)
    theirs = transformers.BertForSequenceClassification(transformers.BertConfig(**TINY, num_labels=num_labels)).eval()
    theirs.save_pretrained(tmp_path)
    ours = polyformers.AutoModelForSequenceClassification.from_pretrained(tmp_path)
    inputs = labelled_inputs("BertModel", ours.config)
    with torch.no_grad():
        a, b = ours(**inputs, labels=labels), theirs(**inputs, labels=labels)
    assert ours.config.problem_type == theirs.config.problem_type == problem_type
    assert max_abs_diff(a.loss, b.loss) < 1e-6 and max_abs_diff(a.logits, b.logits) < 1e-5


def test_decoder_with_cross_attention_and_cache_matches(tmp_path):
    """BertLMHeadModel as a decoder: full forward, and our cached decoding, equal Transformers."""
    import transformers

    import polyformers

    torch.manual_seed(0)
    config = transformers.BertConfig(**TINY, is_decoder=True, add_cross_attention=True)
    theirs = transformers.BertLMHeadModel(config).eval()
    theirs.save_pretrained(tmp_path)
    theirs = transformers.BertLMHeadModel.from_pretrained(tmp_path, attn_implementation="eager").eval()
    ours = polyformers.BertLMHeadModel.from_pretrained(tmp_path)
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(1, 99, (2, 6), generator=g)
    encoder_states = torch.randn(2, 5, 32, generator=g)
    encoder_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    kwargs = dict(encoder_hidden_states=encoder_states, encoder_attention_mask=encoder_mask)
    with torch.no_grad():
        expected = theirs(ids, **kwargs, output_attentions=True)
        full = ours(ids, **kwargs, output_attentions=True)
        assert max_abs_diff(full.logits, expected.logits) < 1e-5
        assert max_abs_diff(full.cross_attentions, expected.cross_attentions) < 1e-5
        step = ours(ids[:, :4], **kwargs, use_cache=True)
        last = ours(ids[:, 4:], **kwargs, past_key_values=step.past_key_values, use_cache=True)
    assert max_abs_diff(last.logits, expected.logits[:, 4:]) < 1e-5


@pytest.mark.parametrize("class_name", ["BertModel", "BertForMaskedLM"])
def test_sharded_and_pickled_transformers_checkpoints_load(tmp_path, class_name):
    import transformers

    import polyformers

    torch.manual_seed(0)
    theirs = getattr(transformers, class_name)(transformers.BertConfig(**TINY)).eval()
    theirs.save_pretrained(tmp_path / "sharded", max_shard_size="30KB")
    torch.save(theirs.state_dict(), tmp_path / "pytorch_model.bin")
    theirs.config.save_pretrained(tmp_path)
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    inputs = labelled_inputs("BertModel", theirs.config)
    inputs.pop("labels", None)
    with torch.no_grad():
        expected = theirs(**inputs)[0]
        for directory in (tmp_path / "sharded", tmp_path):
            ours = getattr(polyformers, class_name).from_pretrained(directory)
            assert max_abs_diff(ours(**inputs)[0], expected) < 1e-5


def test_our_sharded_checkpoint_loads_in_transformers(tmp_path):
    import transformers

    import polyformers

    torch.manual_seed(0)
    ours = polyformers.BertForMaskedLM(polyformers.BertConfig(**TINY)).eval()
    ours.save_pretrained(tmp_path, max_shard_size="30KB")
    theirs = transformers.BertForMaskedLM.from_pretrained(tmp_path).eval()
    inputs = labelled_inputs("BertModel", ours.config)
    inputs.pop("labels", None)
    with torch.no_grad():
        assert max_abs_diff(ours(**inputs).logits, theirs(**inputs).logits) < 1e-5
