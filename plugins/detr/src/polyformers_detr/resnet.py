"""DETR's ResNet backbone: the shared one in core (:mod:`polyformers.layers.resnet`), read from a DETR config.

The backbone itself (frozen batch norm, timm's and Transformers' weight layouts, DC5 dilation) moved
to core layers so that other vision plugins (Conditional DETR, Table Transformer, MaskFormer use
the same ResNets) can build it without depending on this plugin; its parameter names did not
change. What stays here is :func:`backbone_spec`, which reads the backbone out of a DETR config in
any spelling Transformers 4 or 5 writes (``use_timm_backbone`` / ``backbone`` / ``backbone_kwargs``
/ ``dilation`` / ``backbone_config``). Those fields are Transformers' generic backbone arguments, but
their defaults and errors are DETR's, so the parser stays with DETR until a second plugin needs it.

The old names (``DetrFrozenBatchNorm2d``, ``BackboneSpec``, ``ResNetBackbone``, ``TimmResNet``,
``build_resnet``...) are kept as aliases of the core ones.
"""

from __future__ import annotations

from typing import Any

from polyformers.layers.resnet import (
    FrozenBatchNorm2d,
    ResNetBackbone,
    ResNetBasicLayer,
    ResNetBottleNeckLayer,
    ResNetConvLayer,
    ResNetEmbeddings,
    ResNetEncoder,
    ResNetShortCut,
    ResNetStage,
    TimmBasicBlock,
    TimmBottleneck,
    TimmResNet,
    build_resnet,
)
from polyformers.layers.resnet_spec import TIMM_RESNETS, WIDTHS, ResNetSpec, native_dilation_error

DetrFrozenBatchNorm2d = FrozenBatchNorm2d
BackboneSpec = ResNetSpec  # the name this spec had when it lived here

_TIMM_RESNETS = TIMM_RESNETS


def _get(source: Any, name: str, default: Any = None) -> Any:
    if source is None:
        return default
    if isinstance(source, dict):
        return source.get(name, default)
    return getattr(source, name, default)


def backbone_spec(config: Any) -> ResNetSpec:
    """Read the backbone from a DETR config in the 4.x spelling or the 5.x one.

    4.x: ``use_timm_backbone`` + ``backbone`` (+ ``backbone_kwargs``), or ``backbone_config`` (a
    ResNet config). 5.x: ``backbone_config`` alone, a ``timm_backbone`` dict or a ResNet config.
    Our ``DetrConfig`` already normalises both into ``config.resnet``; it is used when present.
    """
    resnet = getattr(config, "resnet", None)
    if resnet is not None:
        return resnet.to_resnet_spec()
    backbone_config = _get(config, "backbone_config")
    if backbone_config is not None and not isinstance(backbone_config, dict) and hasattr(backbone_config, "to_dict"):
        backbone_config = backbone_config.to_dict()
    model_type = _get(backbone_config, "model_type")
    num_channels = _get(config, "num_channels", 3)
    use_timm = (backbone_config is None and _get(config, "use_timm_backbone", True)) or model_type == "timm_backbone"
    if use_timm:
        kwargs = dict(_get(config, "backbone_kwargs") or {})
        name = _get(backbone_config, "backbone") or _get(config, "backbone") or "resnet50"
        if name not in _TIMM_RESNETS:
            raise NotImplementedError(
                f"DETR timm backbone {name!r} is not supported here; supported: {sorted(_TIMM_RESNETS)}. "
                f"Use one of these, or a ResNet backbone_config."
            )
        output_stride = _get(backbone_config, "output_stride") or kwargs.get("output_stride")
        if output_stride not in (None, 16, 32):
            raise ValueError(
                f"DETR's timm backbone supports output_stride 32 (default) or 16 (dilation=True), got {output_stride}."
            )
        layer_type, depths = _TIMM_RESNETS[name]
        out_indices = _get(backbone_config, "out_indices") or kwargs.get("out_indices") or [1, 2, 3, 4]
        return ResNetSpec(
            layout="timm",
            num_channels=_get(backbone_config, "num_channels") or kwargs.get("in_chans") or num_channels,
            embedding_size=64,
            hidden_sizes=WIDTHS[layer_type],
            depths=list(depths),
            layer_type=layer_type,
            out_indices=list(out_indices),
            dilation=bool(_get(config, "dilation")) or output_stride == 16,
        )
    if backbone_config is None:
        backbone_config = {}  # use_timm_backbone=False without a backbone_config: Transformers' default ResNet-50
    if _get(config, "dilation"):
        raise native_dilation_error()
    if model_type is not None and model_type != "resnet":
        raise NotImplementedError(
            f"DETR here supports ResNet backbones only (timm 'resnetNN' or a ResNet backbone_config), got "
            f"backbone_config with model_type={model_type!r}."
        )
    hidden_sizes = list(_get(backbone_config, "hidden_sizes", [256, 512, 1024, 2048]))
    stage_names = ["stem"] + [f"stage{i}" for i in range(1, len(hidden_sizes) + 1)]
    out_indices = _get(backbone_config, "out_indices")
    out_features = _get(backbone_config, "out_features")
    if not out_indices:
        out_indices = [stage_names.index(f) for f in out_features] if out_features else [len(hidden_sizes)]
    return ResNetSpec(
        layout="native",
        num_channels=_get(backbone_config, "num_channels", num_channels),
        embedding_size=_get(backbone_config, "embedding_size", 64),
        hidden_sizes=hidden_sizes,
        depths=list(_get(backbone_config, "depths", [3, 4, 6, 3])),
        layer_type=_get(backbone_config, "layer_type", "bottleneck"),
        hidden_act=_get(backbone_config, "hidden_act", "relu"),
        downsample_in_first_stage=bool(_get(backbone_config, "downsample_in_first_stage", False)),
        downsample_in_bottleneck=bool(_get(backbone_config, "downsample_in_bottleneck", False)),
        out_indices=list(out_indices),
    )


__all__ = [
    "BackboneSpec",
    "DetrFrozenBatchNorm2d",
    "FrozenBatchNorm2d",
    "ResNetBackbone",
    "ResNetBasicLayer",
    "ResNetBottleNeckLayer",
    "ResNetConvLayer",
    "ResNetEmbeddings",
    "ResNetEncoder",
    "ResNetShortCut",
    "ResNetSpec",
    "ResNetStage",
    "TimmBasicBlock",
    "TimmBottleneck",
    "TimmResNet",
    "backbone_spec",
    "build_resnet",
]
