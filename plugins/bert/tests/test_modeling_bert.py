"""BERT (PyTorch): the shared model tests on a tiny config, then what is specific to BERT."""

from __future__ import annotations

import pytest
import torch

from polyformers.testing.model_tester import ConfigTesterMixin, ModelTesterMixin, first_output, max_abs_diff
from polyformers_bert.configuration_bert import BertConfig
from polyformers_bert.modeling_bert import (
    BertForMaskedLM,
    BertForMultipleChoice,
    BertForNextSentencePrediction,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertLMHeadModel,
    BertModel,
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


def tiny_config(**overrides) -> BertConfig:
    return BertConfig(**{**TINY, **overrides})


def bert_inputs(config: BertConfig, model_class: type, with_labels: bool = False, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shape = (BATCH, CHOICES, SEQ) if model_class is BertForMultipleChoice else (BATCH, SEQ)
    inputs = {
        "input_ids": torch.randint(1, config.vocab_size, shape, generator=g),
        "token_type_ids": torch.randint(0, 2, shape, generator=g),
        "attention_mask": torch.ones(shape, dtype=torch.long),
    }
    inputs["attention_mask"][-1, ..., SEQ - 2 :] = 0  # the last row is padded
    if not with_labels:
        return inputs
    if model_class in (BertForMaskedLM, BertLMHeadModel, BertForPreTraining):
        inputs["labels"] = torch.randint(0, config.vocab_size, (BATCH, SEQ), generator=g)
        inputs["labels"][:, 0] = -100
    if model_class is BertForPreTraining:
        inputs["next_sentence_label"] = torch.randint(0, 2, (BATCH,), generator=g)
    if model_class is BertForNextSentencePrediction:
        inputs["labels"] = torch.randint(0, 2, (BATCH,), generator=g)
    if model_class is BertForSequenceClassification:
        inputs["labels"] = torch.randint(0, config.num_labels, (BATCH,), generator=g)
    if model_class is BertForMultipleChoice:
        inputs["labels"] = torch.randint(0, CHOICES, (BATCH,), generator=g)
    if model_class is BertForTokenClassification:
        inputs["labels"] = torch.randint(0, config.num_labels, (BATCH, SEQ), generator=g)
    if model_class is BertForQuestionAnswering:
        inputs["start_positions"] = torch.randint(0, SEQ, (BATCH,), generator=g)
        inputs["end_positions"] = torch.randint(0, SEQ, (BATCH,), generator=g)
    return inputs


CLASS_NAMES = (
    "BertModel",
    "BertForPreTraining",
    "BertLMHeadModel",
    "BertForMaskedLM",
    "BertForNextSentencePrediction",
    "BertForSequenceClassification",
    "BertForMultipleChoice",
    "BertForTokenClassification",
    "BertForQuestionAnswering",
)


def labelled_inputs(class_name: str, config, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shape = (BATCH, CHOICES, SEQ) if class_name == "BertForMultipleChoice" else (BATCH, SEQ)
    inputs = {
        "input_ids": torch.randint(1, config.vocab_size, shape, generator=g),
        "token_type_ids": torch.randint(0, 2, shape, generator=g),
        "attention_mask": torch.ones(shape, dtype=torch.long),
    }
    inputs["attention_mask"][-1, ..., SEQ - 3 :] = 0
    if class_name in ("BertForMaskedLM", "BertLMHeadModel", "BertForPreTraining"):
        inputs["labels"] = torch.randint(0, config.vocab_size, (BATCH, SEQ), generator=g)
    if class_name == "BertForPreTraining":
        inputs["next_sentence_label"] = torch.randint(0, 2, (BATCH,), generator=g)
    if class_name == "BertForNextSentencePrediction":
        inputs["labels"] = torch.randint(0, 2, (BATCH,), generator=g)
    if class_name == "BertForSequenceClassification":
        inputs["labels"] = torch.randint(0, config.num_labels, (BATCH,), generator=g)
    if class_name == "BertForMultipleChoice":
        inputs["labels"] = torch.randint(0, CHOICES, (BATCH,), generator=g)
    if class_name == "BertForTokenClassification":
        inputs["labels"] = torch.randint(0, config.num_labels, (BATCH, SEQ), generator=g)
    if class_name == "BertForQuestionAnswering":
        inputs["start_positions"] = torch.randint(0, SEQ, (BATCH,), generator=g)
        inputs["end_positions"] = torch.randint(0, SEQ, (BATCH,), generator=g)
    return inputs


def transformers_major() -> int:
    try:
        import transformers
    except ImportError:
        return 0
    return int(transformers.__version__.split(".")[0])


ALL_CLASSES = (
    BertModel,
    BertForPreTraining,
    BertLMHeadModel,
    BertForMaskedLM,
    BertForNextSentencePrediction,
    BertForSequenceClassification,
    BertForMultipleChoice,
    BertForTokenClassification,
    BertForQuestionAnswering,
)


class TestBertModels(ModelTesterMixin):
    all_model_classes = ALL_CLASSES
    base_model_class = BertModel
    # The backbone's own loss comes from last_hidden_state, so its pooler gets no gradient.
    params_without_grad = {"BertModel": [r"^pooler\."]}

    def get_config(self) -> BertConfig:
        return tiny_config()

    def get_inputs(self, config, model_class, with_labels=False):
        return bert_inputs(config, model_class, with_labels)


class TestBertConfig(ConfigTesterMixin):
    config_class = BertConfig
    config_kwargs = dict(TINY, position_embedding_type="relative_key")

    def test_bad_position_embedding_type(self):
        with pytest.raises(ValueError, match="relative_key_query"):
            BertConfig(position_embedding_type="rotary")

    def test_heads_must_divide_hidden_size(self):
        with pytest.raises(ValueError, match=r"hidden size \(32\) is not a multiple .* \(5\)"):
            BertModel(tiny_config(num_attention_heads=5))


# --- BERT-specific behaviour ---------------------------------------------------------------------


def _eval(model_class, **overrides):
    torch.manual_seed(0)
    return model_class(tiny_config(**overrides)).eval()


@pytest.mark.parametrize("problem_type,labels", [
    ("regression", torch.tensor([[0.5], [-1.0], [2.0]])),
    ("single_label_classification", torch.tensor([0, 2, 1])),
    ("multi_label_classification", torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])),
])
def test_sequence_classification_losses(problem_type, labels):
    num_labels = 1 if problem_type == "regression" else 3
    model = _eval(BertForSequenceClassification, num_labels=num_labels)
    inputs = bert_inputs(model.config, BertForSequenceClassification)
    with torch.no_grad():
        out = model(**inputs, labels=labels)
    assert model.config.problem_type == problem_type  # inferred from num_labels and the labels' dtype
    if problem_type == "regression":
        expected = torch.nn.functional.mse_loss(out.logits.squeeze(), labels.squeeze())
    elif problem_type == "single_label_classification":
        expected = torch.nn.functional.cross_entropy(out.logits, labels)
    else:
        expected = torch.nn.functional.binary_cross_entropy_with_logits(out.logits, labels)
    torch.testing.assert_close(out.loss, expected)


@pytest.mark.parametrize("position_embedding_type", ["absolute", "relative_key", "relative_key_query"])
def test_decoder_cache_matches_full_forward(position_embedding_type):
    """Decoding token by token with past_key_values gives the logits of one full forward."""
    model = _eval(BertLMHeadModel, is_decoder=True, add_cross_attention=True, position_embedding_type=position_embedding_type)
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(1, 99, (2, 6), generator=g)
    encoder_states = torch.randn(2, 5, 32, generator=g)
    encoder_mask = torch.ones(2, 5, dtype=torch.long)
    encoder_mask[1, 3:] = 0
    with torch.no_grad():
        full = model(ids, encoder_hidden_states=encoder_states, encoder_attention_mask=encoder_mask).logits
        out = model(ids[:, :3], encoder_hidden_states=encoder_states, encoder_attention_mask=encoder_mask, use_cache=True)
        steps = [out.logits]
        past = out.past_key_values
        assert len(past) == 2 and len(past[0]) == 4  # (self k, self v, cross k, cross v) per layer
        for t in range(3, 6):
            out = model(ids[:, t : t + 1], encoder_hidden_states=encoder_states, encoder_attention_mask=encoder_mask, past_key_values=past, use_cache=True)
            past = out.past_key_values
            steps.append(out.logits)
    assert max_abs_diff(torch.cat(steps, dim=1), full) < 1e-5


@pytest.mark.parametrize("position_embedding_type", ["relative_key", "relative_key_query"])
def test_relative_positions_ignore_left_padding(position_embedding_type):
    """With only relative positions, masked tokens in front shift nothing: outputs stay equal."""
    model = _eval(BertModel, position_embedding_type=position_embedding_type)
    ids = torch.randint(1, 99, (1, 5), generator=torch.Generator().manual_seed(4))
    padded = torch.cat([torch.zeros(1, 2, dtype=torch.long), ids], dim=1)
    mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        plain = model(ids).last_hidden_state
        shifted = model(padded, attention_mask=mask).last_hidden_state[:, 2:]
        absolute = _eval(BertModel)(padded, attention_mask=mask).last_hidden_state[:, 2:]
    assert max_abs_diff(plain, shifted) < 1e-5
    assert max_abs_diff(_eval(BertModel)(ids).last_hidden_state, absolute) > 1e-3  # absolute positions do shift


def test_head_mask():
    model = _eval(BertModel)
    inputs = bert_inputs(model.config, BertModel)
    with torch.no_grad():
        plain = model(**inputs).last_hidden_state
        ones = model(**inputs, head_mask=torch.ones(4)).last_hidden_state
        mask = torch.ones(2, 4)
        mask[0, 1] = 0
        masked = model(**inputs, head_mask=mask, output_attentions=True)
    assert max_abs_diff(plain, ones) < 1e-5
    assert masked.attentions[0][:, 1].abs().max() == 0
    assert masked.attentions[1][:, 1].abs().max() > 0
    assert max_abs_diff(plain, masked.last_hidden_state) > 1e-4
    with pytest.raises(ValueError, match="head_mask has 3 layers"):
        model(**inputs, head_mask=torch.ones(3, 4))


def test_sdpa_and_eager_agree():
    sdpa = _eval(BertForMaskedLM)
    eager = _eval(BertForMaskedLM, attn_implementation="eager")
    assert eager.config._attn_implementation == "eager"
    inputs = bert_inputs(sdpa.config, BertForMaskedLM)
    with torch.no_grad():
        assert max_abs_diff(sdpa(**inputs).logits, eager(**inputs).logits) < 1e-5
        # Asking for attention probabilities takes the eager path and changes nothing else.
        assert max_abs_diff(sdpa(**inputs).logits, sdpa(**inputs, output_attentions=True).logits) < 1e-5


def test_inputs_embeds_equal_input_ids():
    model = _eval(BertModel)
    inputs = bert_inputs(model.config, BertModel)
    ids = inputs.pop("input_ids")
    with torch.no_grad():
        a = model(input_ids=ids, **inputs).last_hidden_state
        b = model(inputs_embeds=model.embeddings.word_embeddings(ids), **inputs).last_hidden_state
    assert max_abs_diff(a, b) == 0.0
    with pytest.raises(ValueError, match="either input_ids or inputs_embeds"):
        model(input_ids=ids, inputs_embeds=model.embeddings.word_embeddings(ids))


def test_chunked_feed_forward_is_equivalent():
    plain = _eval(BertModel)
    chunked = _eval(BertModel, chunk_size_feed_forward=1)
    inputs = bert_inputs(plain.config, BertModel)
    with torch.no_grad():
        assert max_abs_diff(plain(**inputs).last_hidden_state, chunked(**inputs).last_hidden_state) < 1e-6


@pytest.mark.parametrize("hidden_act", ["gelu_new", "relu", "silu", "gelu_pytorch_tanh"])
def test_hidden_act_variants_run(hidden_act):
    model = _eval(BertForMaskedLM, hidden_act=hidden_act)
    with torch.no_grad():
        logits = model(**bert_inputs(model.config, BertForMaskedLM)).logits
    assert torch.isfinite(logits).all()


def test_too_long_input_error():
    model = _eval(BertModel)
    with pytest.raises(ValueError, match="max_position_embeddings=64"):
        model(torch.ones(1, 65, dtype=torch.long))


def test_mlm_decoder_is_tied(tmp_path):
    model = _eval(BertForMaskedLM)
    decoder = model.cls.predictions.decoder
    assert decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert decoder.bias is model.cls.predictions.bias
    model.save_pretrained(tmp_path)
    loaded = BertForMaskedLM.from_pretrained(tmp_path)
    assert loaded.cls.predictions.decoder.weight is loaded.bert.embeddings.word_embeddings.weight
    assert loaded.cls.predictions.decoder.bias is loaded.cls.predictions.bias
    untied = _eval(BertForMaskedLM, tie_word_embeddings=False)
    assert untied.cls.predictions.decoder.weight is not untied.bert.embeddings.word_embeddings.weight


def test_resize_token_embeddings_keeps_rows_and_ties():
    model = _eval(BertForMaskedLM)
    old = model.bert.embeddings.word_embeddings.weight.detach().clone()
    model.resize_token_embeddings(105)
    new = model.bert.embeddings.word_embeddings.weight
    assert new.shape == (105, 32) and torch.equal(new[:99], old)
    assert model.cls.predictions.decoder.weight is new
    assert model.cls.predictions.bias.shape == (105,) and model.config.vocab_size == 105
    with torch.no_grad():
        assert model(torch.tensor([[104, 3]])).logits.shape == (1, 2, 105)


def test_prune_heads_round_trip(tmp_path):
    model = _eval(BertModel)
    model.prune_heads({0: [0, 2]})
    assert model.encoder.layer[0].attention.self.num_attention_heads == 2
    inputs = bert_inputs(model.config, BertModel)
    model.save_pretrained(tmp_path)
    loaded = BertModel.from_pretrained(tmp_path)
    assert loaded.config.pruned_heads == {0: [0, 2]}
    with torch.no_grad():
        assert max_abs_diff(model(**inputs).last_hidden_state, loaded(**inputs).last_hidden_state) == 0.0


def test_gradient_checkpointing_gives_same_gradients():
    def grads(checkpointing: bool):
        torch.manual_seed(0)
        model = BertForSequenceClassification(tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)).train()
        if checkpointing:
            model.gradient_checkpointing_enable()
        inputs = bert_inputs(model.config, BertForSequenceClassification, with_labels=True)
        model(**inputs).loss.backward()
        return [p.grad for p in model.parameters()]

    assert max_abs_diff(grads(False), grads(True)) < 1e-6


def test_from_pretrained_does_not_initialise_loaded_weights(tmp_path, monkeypatch):
    """Loading builds parameters on the meta device: no random init touches real memory."""
    _eval(BertForMaskedLM).save_pretrained(tmp_path)
    calls = []
    original = torch.nn.init.normal_

    def spy(tensor, *args, **kwargs):
        calls.append(tensor.device.type)
        return original(tensor, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "normal_", lambda self, *a, **k: (calls.append(self.device.type), torch.Tensor.uniform_(self))[1], raising=True)
    model = BertForMaskedLM.from_pretrained(tmp_path)
    assert all(device == "meta" for device in calls), calls
    assert not any(p.is_meta for p in model.parameters())


def test_auto_classes_resolve_bert(tmp_path):
    import polyformers
    from polyformers import AutoConfig, AutoModel, AutoModelForQuestionAnswering

    _eval(BertForQuestionAnswering).save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), BertConfig)
    assert type(AutoModel.from_pretrained(tmp_path)) is BertModel
    assert type(AutoModelForQuestionAnswering.from_pretrained(tmp_path)) is BertForQuestionAnswering
    assert polyformers.BertForQuestionAnswering is BertForQuestionAnswering
    with pytest.raises(ValueError, match="no PyTorch model for task 'ctc'"):
        polyformers.AutoModelForCTC.from_pretrained(tmp_path)
