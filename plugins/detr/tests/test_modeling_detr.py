"""DETR (PyTorch): the shared model tests on a tiny config, parity with Transformers 5.x (and 4.46 names),
both ResNet weight layouts, the set loss, and a few training steps on synthetic rectangles."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap

import pytest
import torch
import torch.nn.functional as F

from polyformers.testing.model_tester import ModelTesterMixin, max_abs_diff
from polyformers_detr.configuration_detr import DetrConfig, resnet_block_schedule
from polyformers_detr.loss_detr import HungarianMatcher, center_to_corners, generalized_box_iou
from polyformers_detr.modeling_detr import DetrForObjectDetection, DetrForSegmentation, DetrModel
from polyformers_detr.checkpoint_names import native_to_timm_key, timm_to_native_key
from polyformers_detr.resnet import DetrFrozenBatchNorm2d, backbone_spec, build_resnet

# d_model + heads must be divisible by 8 for the mask head's GroupNorm: 16 + 8.
TINY = dict(
    d_model=16,
    encoder_layers=2,
    decoder_layers=2,
    encoder_ffn_dim=20,
    decoder_ffn_dim=20,
    encoder_attention_heads=8,
    decoder_attention_heads=8,
    num_queries=5,
    num_labels=3,
    dropout=0.0,
)
TINY_RESNET = dict(
    model_type="resnet",
    embedding_size=8,
    hidden_sizes=[8, 16, 16, 32],
    depths=[1, 1, 1, 1],
    layer_type="basic",
    out_features=["stage1", "stage2", "stage3", "stage4"],
)
CLASSES = (DetrModel, DetrForObjectDetection, DetrForSegmentation)
BATCH, SIZE = 2, 64
TOL = 1e-4


def tiny_config(**overrides) -> DetrConfig:
    return DetrConfig(**{"backbone_config": dict(TINY_RESNET), "use_timm_backbone": False, **TINY, **overrides})


def make_labels(num_labels: int, with_masks: bool, seed: int = 0, counts=(2, 3)) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    labels = []
    for n in counts:
        center = torch.rand(n, 2, generator=g) * 0.5 + 0.25
        size = torch.rand(n, 2, generator=g) * 0.3 + 0.1
        target = {"class_labels": torch.randint(0, num_labels, (n,), generator=g), "boxes": torch.cat([center, size], -1)}
        if with_masks:
            target["masks"] = (torch.rand(n, SIZE, SIZE, generator=g) > 0.5).float()
        labels.append(target)
    return labels


def image_inputs(config, model_class: type, with_labels: bool = False, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    pixel_mask = torch.ones(BATCH, SIZE, SIZE, dtype=torch.long)
    pixel_mask[-1, :, 40:] = 0  # the second image is padded on the right and at the bottom
    pixel_mask[-1, 48:, :] = 0
    inputs = {"pixel_values": torch.randn(BATCH, 3, SIZE, SIZE, generator=g), "pixel_mask": pixel_mask}
    if with_labels and model_class is not DetrModel:
        inputs["labels"] = make_labels(config.num_labels, model_class is DetrForSegmentation, seed)
    return inputs


class TestDetrModel(ModelTesterMixin):
    all_model_classes = CLASSES
    base_model_class = DetrModel

    def get_config(self):
        return tiny_config()

    def get_inputs(self, config, model_class, with_labels=False):
        return image_inputs(config, model_class, with_labels)

    def test_mismatched_sizes(self, tmp_path):
        """A detection checkpoint with 3 classes into a 5-class config: the classifier is re-initialised."""
        from polyformers.errors import WeightShapeMismatchError

        torch.manual_seed(0)
        DetrForObjectDetection(tiny_config()).save_pretrained(tmp_path)
        with pytest.raises(WeightShapeMismatchError, match="ignore_mismatched_sizes=True"):
            DetrForObjectDetection.from_pretrained(tmp_path, config=tiny_config(num_labels=5))
        model, info = DetrForObjectDetection.from_pretrained(
            tmp_path, config=tiny_config(num_labels=5), ignore_mismatched_sizes=True, output_loading_info=True
        )
        assert {k for k, _, _ in info["mismatched_keys"]} == {"class_labels_classifier.weight", "class_labels_classifier.bias"}
        assert model.class_labels_classifier.out_features == 6

    def test_attention_and_hidden_state_outputs(self):
        for model_class in self._each_class():
            config = self.get_config()
            model = self.make_model(model_class, config)
            outputs = self.run(model, self.get_inputs(config, model_class), output_attentions=True, output_hidden_states=True)
            assert len(outputs.encoder_attentions) == config.encoder_layers and len(outputs.decoder_attentions) == config.decoder_layers
            assert len(outputs.encoder_hidden_states) == config.encoder_layers + 1
            assert len(outputs.decoder_hidden_states) == config.decoder_layers + 1
            assert max_abs_diff(outputs.decoder_hidden_states[-1], outputs.last_hidden_state) == 0.0
            encoder_attention = outputs.encoder_attentions[0]  # (B, nh, S, S): 64 / 32 = a 2 x 2 feature map
            assert encoder_attention.shape == (BATCH, 8, 4, 4)
            assert outputs.cross_attentions[0].shape == (BATCH, 8, config.num_queries, 4)
            torch.testing.assert_close(encoder_attention.sum(-1), torch.ones_like(encoder_attention.sum(-1)))


# --- shapes, masks, heads ---------------------------------------------------------------------------------


def test_output_shapes_and_default_pixel_mask():
    config = tiny_config(auxiliary_loss=True)
    torch.manual_seed(0)
    model = DetrForSegmentation(config).eval()
    pixel_values = torch.randn(BATCH, 3, SIZE, SIZE)
    with torch.no_grad():
        outputs = model(pixel_values)
        explicit = model(pixel_values, pixel_mask=torch.ones(BATCH, SIZE, SIZE, dtype=torch.long))
    assert outputs.logits.shape == (BATCH, 5, 4)
    assert outputs.pred_boxes.shape == (BATCH, 5, 4) and 0 < outputs.pred_boxes.min() and outputs.pred_boxes.max() < 1
    assert outputs.pred_masks.shape == (BATCH, 5, 16, 16)  # a quarter of the image
    assert outputs.last_hidden_state.shape == (BATCH, 5, 16)
    assert outputs.encoder_last_hidden_state.shape == (BATCH, 4, 16)
    assert max_abs_diff(outputs.pred_masks, explicit.pred_masks) == 0.0
    base = DetrModel(config).eval()
    with torch.no_grad():
        assert base(pixel_values).intermediate_hidden_states.shape == (2, BATCH, 5, 16)


def test_padding_gets_no_attention():
    """Feature-map positions that fall on padding get no attention in the encoder nor from the queries."""
    config = tiny_config()
    torch.manual_seed(0)
    model = DetrForObjectDetection(config).eval()
    inputs = image_inputs(config, DetrForObjectDetection)
    mask = torch.ones(BATCH, SIZE, SIZE, dtype=torch.long)
    mask[0, :, 32:] = 0  # on the 2 x 2 feature map, the right column (flat positions 1 and 3) is padding
    with torch.no_grad():
        outputs = model(inputs["pixel_values"], pixel_mask=mask, output_attentions=True)
    for attention in (*outputs.encoder_attentions, *outputs.cross_attentions):
        assert attention[0, :, :, [1, 3]].abs().max() == 0
        assert attention[1, :, :, [1, 3]].abs().max() > 0


def test_inputs_embeds_bypass_backbone():
    config = tiny_config()
    torch.manual_seed(0)
    model = DetrModel(config).eval()
    with torch.no_grad():
        outputs = model(inputs_embeds=torch.randn(BATCH, 9, 16))
    assert outputs.last_hidden_state.shape == (BATCH, 5, 16)
    with pytest.raises(ValueError, match="inputs_embeds"):
        DetrForSegmentation(config)(None, inputs_embeds=torch.randn(BATCH, 9, 16))


def test_segmentation_needs_four_feature_maps():
    with pytest.raises(ValueError, match="out_features"):
        DetrForSegmentation(tiny_config(backbone_config={**TINY_RESNET, "out_features": ["stage4"]}))


def test_detection_checkpoint_loads_into_segmentation(tmp_path):
    """The panoptic recipe: train detection, then add the mask head on top of its weights."""
    torch.manual_seed(0)
    detection = DetrForObjectDetection(tiny_config()).eval()
    detection.save_pretrained(tmp_path)
    segmentation, info = DetrForSegmentation.from_pretrained(tmp_path, output_loading_info=True)
    assert info["unexpected_keys"] == []
    assert info["missing_keys"] and all(k.startswith(("mask_head.", "bbox_attention.")) for k in info["missing_keys"])
    inputs = image_inputs(detection.config, DetrForObjectDetection)
    with torch.no_grad():
        assert max_abs_diff(detection(**inputs).logits, segmentation(**inputs).logits) == 0.0
    segmentation.save_pretrained(tmp_path / "seg")
    back, info = DetrForObjectDetection.from_pretrained(tmp_path / "seg", output_loading_info=True)
    assert info["missing_keys"] == []
    with torch.no_grad():
        assert max_abs_diff(detection(**inputs).logits, back(**inputs).logits) == 0.0


# --- dilation (DC5): timm's output_stride=16 ---------------------------------------------------------------


def dilated_config(**overrides) -> DetrConfig:
    return DetrConfig(**{"use_timm_backbone": True, "backbone": "resnet18", "use_pretrained_backbone": False, "dilation": True, **TINY, **overrides})


def randomize_frozen_batch_norms(model: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, DetrFrozenBatchNorm2d):
            n = module.weight.numel()
            module.weight.copy_(torch.rand(n, generator=g) + 0.5)
            module.bias.copy_(torch.randn(n, generator=g) * 0.1)
            module.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=g) + 0.5)


def test_dilation_schedule_is_timms_output_stride_16():
    """(stride, first_dilation, dilation) per block, as timm's make_blocks gives them with output_stride=16."""
    plain, dc5 = (1, 1, 1), (2, 1, 1)
    assert resnet_block_schedule((2, 2, 2, 2), dilation=True) == [
        [plain, plain], [dc5, plain], [dc5, plain], [(1, 1, 2), (1, 2, 2)]
    ]
    assert resnet_block_schedule((3, 4, 6, 3), dilation=True) == [
        [plain] * 3, [dc5] + [plain] * 3, [dc5] + [plain] * 5, [(1, 1, 2), (1, 2, 2), (1, 2, 2)]
    ]
    assert resnet_block_schedule((3, 4, 6, 3)) == [[plain] * 3, [dc5] + [plain] * 3, [dc5] + [plain] * 5, [dc5] + [plain] * 2]


def test_dilation_resnet50_convolutions():
    resnet = build_resnet(backbone_spec(DetrConfig(backbone="resnet50", use_pretrained_backbone=False, dilation=True)))
    layer3, layer4 = resnet.layer3, resnet.layer4
    assert (layer3[0].conv2.stride, layer3[0].conv2.dilation, layer3[0].downsample[0].stride) == ((2, 2), (1, 1), (2, 2))
    first, *rest = layer4
    assert (first.conv2.stride, first.conv2.dilation, first.conv2.padding) == ((1, 1), (1, 1), (1, 1))
    assert (first.downsample[0].stride, first.downsample[0].kernel_size) == ((1, 1), (1, 1))
    for block in rest:
        assert (block.conv2.stride, block.conv2.dilation, block.conv2.padding) == ((1, 1), (2, 2), (2, 2))
        assert block.conv1.kernel_size == block.conv3.kernel_size == (1, 1) and block.downsample is None


def test_dilation_last_feature_map_has_stride_16():
    torch.manual_seed(0)
    pixel_values = torch.randn(1, 3, SIZE, SIZE)
    shapes = {}
    for dilation in (False, True):
        resnet = DetrModel(dilated_config(dilation=dilation)).eval().backbone.conv_encoder.model
        with torch.no_grad():
            shapes[dilation] = [tuple(f.shape) for f in resnet(pixel_values)]
    assert shapes[False] == [(1, 64, 16, 16), (1, 128, 8, 8), (1, 256, 4, 4), (1, 512, 2, 2)]
    assert shapes[True] == [(1, 64, 16, 16), (1, 128, 8, 8), (1, 256, 4, 4), (1, 512, 4, 4)]
    model = DetrForObjectDetection(dilated_config()).eval()
    with torch.no_grad():
        outputs = model(pixel_values)
    assert outputs.encoder_last_hidden_state.shape == (1, 16, 16)  # 4x4 positions, not 2x2


def test_dilated_blocks_match_hand_written_convolutions():
    """layer4 of a dilated resnet18: block 0 is 3x3 (dilation 1) then 3x3 (dilation 2), block 1 both dilation 2."""
    torch.manual_seed(0)
    resnet = DetrModel(dilated_config()).eval().backbone.conv_encoder.model
    randomize_frozen_batch_norms(resnet)
    x = torch.randn(2, 256, 5, 7)

    def bn(module, t):
        scale = module.weight * (module.running_var + module.eps).rsqrt()
        return t * scale[:, None, None] + (module.bias - module.running_mean * scale)[:, None, None]

    def basic(block, t, first_dilation, dilation, shortcut):
        out = torch.relu(bn(block.bn1, F.conv2d(t, block.conv1.weight, padding=first_dilation, dilation=first_dilation)))
        out = bn(block.bn2, F.conv2d(out, block.conv2.weight, padding=dilation, dilation=dilation))
        return torch.relu(out + shortcut)

    block0, block1 = resnet.layer4
    with torch.no_grad():
        shortcut = bn(block0.downsample[1], F.conv2d(x, block0.downsample[0].weight))
        expected0 = basic(block0, x, 1, 2, shortcut)
        expected1 = basic(block1, expected0, 2, 2, expected0)
        got0 = block0(x)
        got1 = block1(got0)
    assert got0.shape == got1.shape == (2, 512, 5, 7)
    assert max_abs_diff(got0, expected0) < 1e-5 and max_abs_diff(got1, expected1) < 1e-5
    assert block1.conv1.dilation == (2, 2)  # a dilation-1 conv would give different numbers:
    assert max_abs_diff(F.conv2d(expected0, block1.conv1.weight, padding=1), F.conv2d(expected0, block1.conv1.weight, padding=2, dilation=2)) > 1e-2


def test_dilated_segmentation_trains_a_step():
    torch.manual_seed(0)
    config = dilated_config()
    model = DetrForSegmentation(config)
    inputs = image_inputs(config, DetrForSegmentation, with_labels=True)
    outputs = model(**inputs)
    assert outputs.pred_masks.shape == (BATCH, 5, 16, 16)
    assert torch.isfinite(outputs.loss)
    outputs.loss.backward()
    assert model.detr.model.backbone.conv_encoder.model.layer4[1].conv1.weight.grad.abs().sum() > 0


def test_dilation_needs_a_timm_backbone():
    spec = backbone_spec({"backbone_config": {"model_type": "timm_backbone", "backbone": "resnet18", "output_stride": 16}})
    assert spec.layout == "timm" and spec.dilation
    assert backbone_spec(DetrConfig(backbone="resnet18", backbone_kwargs={"output_stride": 16})).dilation
    with pytest.raises(ValueError, match="needs a timm backbone"):
        backbone_spec({"backbone_config": dict(TINY_RESNET), "dilation": True})
    # DetrConfig drops dilation for the native layout, as Transformers 4 does.
    assert tiny_config(dilation=True).dilation is None and not backbone_spec(tiny_config(dilation=True)).dilation


# --- the loss -------------------------------------------------------------------------------------------------


def test_generalized_box_iou():
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [2.0, 0.0, 3.0, 1.0]])
    giou = generalized_box_iou(boxes, boxes)
    assert torch.allclose(giou.diagonal(), torch.ones(2))
    assert torch.allclose(giou[0, 1], torch.tensor(-1 / 3))  # disjoint: IoU 0, enclosing 3, union 2
    with pytest.raises(ValueError, match="corner"):
        generalized_box_iou(torch.tensor([[1.0, 1.0, 0.0, 0.0]]), boxes)
    assert torch.allclose(center_to_corners(torch.tensor([0.5, 0.5, 0.2, 0.4])), torch.tensor([0.4, 0.3, 0.6, 0.7]))


def test_matcher_finds_the_obvious_assignment():
    boxes = torch.tensor([[0.2, 0.2, 0.1, 0.1], [0.7, 0.7, 0.2, 0.2], [0.5, 0.2, 0.1, 0.3]])
    logits = torch.full((1, 3, 3), -5.0)
    logits[0, 0, 1] = logits[0, 1, 0] = logits[0, 2, 2] = 5.0
    outputs = {"logits": logits, "pred_boxes": boxes[None]}
    targets = [{"class_labels": torch.tensor([0, 1]), "boxes": boxes[[1, 0]]}]  # query 1 <-> target 0, query 0 <-> target 1
    (queries, target_ids), = HungarianMatcher(1, 5, 2)(outputs, targets)
    assert dict(zip(queries.tolist(), target_ids.tolist())) == {0: 1, 1: 0}
    with pytest.raises(ValueError, match="non-zero"):
        HungarianMatcher(0, 0, 0)


def test_loss_dict_and_weights():
    config = tiny_config(auxiliary_loss=True)
    torch.manual_seed(0)
    model = DetrForSegmentation(config).eval()
    inputs = image_inputs(config, DetrForSegmentation, with_labels=True)
    with torch.no_grad():
        outputs = model(**inputs)
    d = outputs.loss_dict
    weights = {"loss_ce": 1, "loss_bbox": 5, "loss_giou": 2, "loss_mask": 1, "loss_dice": 1, "loss_ce_0": 1, "loss_bbox_0": 5, "loss_giou_0": 2}
    assert set(d) == set(weights) | {"cardinality_error", "cardinality_error_0"}  # cardinality is logged, not added
    expected = sum(d[k] * w for k, w in weights.items())
    assert torch.allclose(outputs.loss, expected)
    assert len(outputs.auxiliary_outputs) == 1 and outputs.auxiliary_outputs[0]["logits"].shape == (BATCH, 5, 4)
    with pytest.raises(ValueError, match="masks"):
        model(**{**inputs, "labels": make_labels(3, with_masks=False)})


# --- parity with Transformers 5.x -----------------------------------------------------------------------------


def _transformers():
    transformers = pytest.importorskip("transformers")
    if int(transformers.__version__.split(".")[0]) != 5:
        pytest.skip("these parity tests use Transformers 5.x")
    return transformers


def _their_config(transformers, **overrides):
    resnet = {k: v for k, v in TINY_RESNET.items() if k != "model_type"}
    return transformers.DetrConfig(backbone_config=transformers.ResNetConfig(**resnet), **{**TINY, **overrides})


def _compare(ours, theirs, label: str) -> float:
    diffs = {}
    for key in theirs.keys():
        if theirs[key] is None:
            continue
        if key == "loss_dict":
            assert set(ours[key]) == set(theirs[key]), label
            diffs.update({f"loss_dict.{k}": max_abs_diff(ours[key][k], theirs[key][k]) for k in theirs[key]})
        elif key == "auxiliary_outputs":
            diffs[key] = max(max_abs_diff(a[k], b[k]) for a, b in zip(ours[key], theirs[key]) for k in b)
        else:
            diffs[key] = max_abs_diff(ours[key], theirs[key])
    assert diffs and max(diffs.values()) < TOL, f"{label}: outputs differ from Transformers: {diffs}"
    return max(diffs.values())


PARITY_CASES = [(c.__name__, pos, aux) for c in CLASSES for pos in ("sine", "learned") for aux in (False, True)]


@pytest.mark.parametrize("class_name,position,auxiliary", PARITY_CASES, ids=[f"{c}-{p}-aux{int(a)}" for c, p, a in PARITY_CASES])
def test_parity_both_ways(tmp_path, class_name, position, auxiliary):
    transformers = _transformers()
    import polyformers_detr.modeling_detr as ours_module

    overrides = dict(position_embedding_type=position, auxiliary_loss=auxiliary)
    theirs_class, ours_class = getattr(transformers, class_name), getattr(ours_module, class_name)
    config = tiny_config(**overrides)
    inputs = image_inputs(config, ours_class, with_labels=True)

    torch.manual_seed(0)
    theirs = theirs_class(_their_config(transformers, **overrides)).eval()
    theirs.save_pretrained(tmp_path / "theirs")
    ours, info = ours_class.from_pretrained(tmp_path / "theirs", output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == [], info
    with torch.no_grad():
        _compare(ours(**inputs), theirs(**inputs), class_name)  # SDPA on both sides
        _compare(ours(**inputs, output_hidden_states=True), theirs(**inputs, output_hidden_states=True), class_name)

    torch.manual_seed(1)
    ours = ours_class(config).eval()
    ours.save_pretrained(tmp_path / "ours")
    theirs, info = theirs_class.from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    theirs.eval()
    with torch.no_grad():
        _compare(ours(**inputs), theirs(**inputs), class_name)


def test_eager_attentions_match(tmp_path):
    transformers = _transformers()
    torch.manual_seed(0)
    their_config = _their_config(transformers)
    their_config._attn_implementation = "eager"  # Transformers' SDPA path returns no attention weights
    theirs = transformers.DetrForObjectDetection(their_config).eval()
    theirs.save_pretrained(tmp_path)
    ours = DetrForObjectDetection.from_pretrained(tmp_path)
    inputs = image_inputs(ours.config, DetrForObjectDetection)
    with torch.no_grad():
        a, b = ours(**inputs, output_attentions=True), theirs(**inputs, output_attentions=True)
    for key in ("encoder_attentions", "decoder_attentions", "cross_attentions", "logits"):
        assert max_abs_diff(a[key], b[key]) < TOL, key


# --- the other ResNet layout: timm names -------------------------------------------------------------------------

# resnet18's shape; Transformers' native ResNet with it computes what timm's resnet18 does.
RESNET18 = dict(
    embedding_size=64,
    hidden_sizes=[64, 128, 256, 512],
    depths=[2, 2, 2, 2],
    layer_type="basic",
    out_features=["stage1", "stage2", "stage3", "stage4"],
)


def test_key_translation_round_trips():
    for native in (
        "embedder.embedder.convolution.weight",
        "embedder.embedder.normalization.running_var",
        "encoder.stages.1.layers.0.shortcut.convolution.weight",
        "encoder.stages.1.layers.0.shortcut.normalization.bias",
        "encoder.stages.3.layers.1.layer.2.normalization.running_mean",
    ):
        assert timm_to_native_key(native_to_timm_key(native)) == native
    assert native_to_timm_key("encoder.stages.1.layers.0.shortcut.normalization.bias") == "layer2.0.downsample.1.bias"
    assert native_to_timm_key("encoder.stages.0.layers.1.layer.1.convolution.weight") == "layer1.1.conv2.weight"


def test_timm_layout_loads_renamed_transformers_weights(tmp_path):
    """A Transformers-written checkpoint, its backbone renamed to timm's names, loads into the timm layout.

    Transformers itself can't write a timm-backbone DETR here (``timm`` is not installed), so the
    timm names are produced by renaming a native-ResNet checkpoint with the same architecture
    (resnet18): that is the layout facebook/detr-resnet-50 ships.
    """
    transformers = _transformers()
    from safetensors.torch import load_file, save_file

    torch.manual_seed(0)
    their_config = transformers.DetrConfig(backbone_config=transformers.ResNetConfig(**RESNET18), **TINY)
    theirs = transformers.DetrForObjectDetection(their_config).eval()
    theirs.save_pretrained(tmp_path / "native")

    state = load_file(tmp_path / "native" / "model.safetensors")
    marker = "backbone.conv_encoder.model."
    timm_state = {}
    for key, tensor in state.items():
        if marker in key:
            prefix, inner = key.split(marker)
            key = prefix + marker + native_to_timm_key(inner)
        timm_state[key] = tensor
    assert "model.backbone.conv_encoder.model.layer2.0.downsample.0.weight" in timm_state
    os.makedirs(tmp_path / "timm")
    save_file(timm_state, tmp_path / "timm" / "model.safetensors", metadata={"format": "pt"})
    DetrConfig(use_timm_backbone=True, backbone="resnet18", use_pretrained_backbone=False, **TINY).save_pretrained(tmp_path / "timm")

    ours, info = DetrForObjectDetection.from_pretrained(tmp_path / "timm", output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [], info
    names = dict(ours.named_parameters())
    assert "model.backbone.conv_encoder.model.conv1.weight" in names and "model.backbone.conv_encoder.model.layer4.1.conv2.weight" in names
    # timm-layout freezing, as Transformers: the stem and layer1 frozen, layer2..4 trainable.
    assert not names["model.backbone.conv_encoder.model.layer1.0.conv1.weight"].requires_grad
    assert names["model.backbone.conv_encoder.model.layer2.0.conv1.weight"].requires_grad

    inputs = image_inputs(ours.config, DetrForObjectDetection)
    with torch.no_grad():
        expected = theirs(**inputs)
        got = ours(**inputs)
    assert max_abs_diff(got.logits, expected.logits) < TOL and max_abs_diff(got.pred_boxes, expected.pred_boxes) < TOL

    # The timm-named checkpoint also loads into a native-layout model (and the native one into timm).
    native_config = tiny_config(backbone_config={"model_type": "resnet", **RESNET18})
    native_ours, info = DetrForObjectDetection.from_pretrained(tmp_path / "timm", config=native_config, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [], info
    with torch.no_grad():
        assert max_abs_diff(native_ours(**inputs).logits, expected.logits) < TOL
    ours.save_pretrained(tmp_path / "ours_timm")
    with open(tmp_path / "ours_timm" / "config.json") as f:
        assert json.load(f)["use_timm_backbone"] is True
    assert "model.backbone.conv_encoder.model.layer1.0.bn1.running_var" in load_file(tmp_path / "ours_timm" / "model.safetensors")


# --- Transformers 4.46 checkpoints -----------------------------------------------------------------------------------

def _v4_python() -> str:
    """The oracle-v4 environment's interpreter (scripts/test-all.sh passes its site-packages), else a dev one."""
    site = os.environ.get("POLYFORMERS_ORACLE_V4_SITE")
    if site:
        return os.path.join(site, "..", "..", "..", "bin", "python")
    return os.environ.get("POLYFORMERS_ORACLE_V4_PYTHON", "/tmp/o4tf/bin/python")


_V4_PYTHON = _v4_python()

_V4_SCRIPT = textwrap.dedent(
    """
    import sys, torch, transformers
    out = sys.argv[1]
    resnet = transformers.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1], layer_type="basic",
                                       out_features=["stage1", "stage2", "stage3", "stage4"])
    config = transformers.DetrConfig(use_timm_backbone=False, backbone=None, use_pretrained_backbone=False, backbone_config=resnet,
                                     d_model=16, encoder_layers=2, decoder_layers=2, encoder_ffn_dim=20, decoder_ffn_dim=20,
                                     encoder_attention_heads=8, decoder_attention_heads=8, num_queries=5, num_labels=3, dropout=0.0,
                                     position_embedding_type="learned")
    torch.manual_seed(0)
    model = transformers.DetrForSegmentation(config).eval()
    model.save_pretrained(out)
    torch.manual_seed(0)
    pixel_values = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        outputs = model(pixel_values)
    torch.save({"pixel_values": pixel_values, "logits": outputs.logits, "pred_masks": outputs.pred_masks}, out + "/expected.pt")
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(_V4_PYTHON), reason="needs the Transformers 4.46 (oracle-v4) environment")
def test_transformers_v4_checkpoint_loads(tmp_path):
    """4.46 writes the same layer names, but the learned position embedding under ``backbone.position_embedding``."""
    result = subprocess.run([_V4_PYTHON, "-c", _V4_SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        pytest.skip(f"Transformers 4.46 could not write the checkpoint: {result.stderr[-500:]}")
    from safetensors.torch import load_file

    assert "detr.model.backbone.position_embedding.row_embeddings.weight" in load_file(tmp_path / "model.safetensors")
    ours, info = DetrForSegmentation.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [], info
    expected = torch.load(tmp_path / "expected.pt")
    with torch.no_grad():
        outputs = ours(expected["pixel_values"])
    assert max_abs_diff(outputs.logits, expected["logits"]) < TOL
    assert max_abs_diff(outputs.pred_masks, expected["pred_masks"]) < TOL


# --- training -------------------------------------------------------------------------------------------------------------


def rectangles(num_images: int = 4, seed: int = 0) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """64 x 64 images with 1-2 solid rectangles, red (class 0), green (1) or blue (2), on a dark background."""
    g = torch.Generator().manual_seed(seed)
    images = torch.full((num_images, 3, SIZE, SIZE), -1.0)
    labels = []
    for i in range(num_images):
        classes, boxes = [], []
        for _ in range(1 + i % 2):
            w, h = (torch.randint(12, 28, (2,), generator=g)).tolist()
            x0, y0 = torch.randint(0, SIZE - w, (1,), generator=g).item(), torch.randint(0, SIZE - h, (1,), generator=g).item()
            c = torch.randint(0, 3, (1,), generator=g).item()
            images[i, :, y0 : y0 + h, x0 : x0 + w] = -1.0
            images[i, c, y0 : y0 + h, x0 : x0 + w] = 1.0
            classes.append(c)
            boxes.append([(x0 + w / 2) / SIZE, (y0 + h / 2) / SIZE, w / SIZE, h / SIZE])
        labels.append({"class_labels": torch.tensor(classes), "boxes": torch.tensor(boxes)})
    return images, labels


def test_training_lowers_the_loss():
    """A handful of AdamW steps on one batch. The native ResNet stays frozen (as in Transformers), so only the
    projection, the Transformer and the heads learn."""
    torch.manual_seed(0)
    model = DetrForObjectDetection(tiny_config(auxiliary_loss=True)).train()
    images, labels = rectangles()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(15):
        loss = model(images, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses
