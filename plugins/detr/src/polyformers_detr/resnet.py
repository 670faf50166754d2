"""The ResNet backbone of DETR, with frozen batch norm, in both weight layouts Transformers writes.

Transformers builds DETR's backbone in one of two ways, and the parameter names differ:

* a **timm** ResNet (``use_timm_backbone=True`` in 4.x, ``backbone_config={"model_type":
  "timm_backbone", "backbone": "resnet50", ...}`` in 5.x; the layout of ``facebook/detr-resnet-50``):
  ``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer1.0.downsample.0`` / ``.1`` ...
* its own **ResNetBackbone**, when ``backbone_config`` is a ``ResNetConfig``:
  ``embedder.embedder.convolution``, ``encoder.stages.0.layers.0.layer.0.normalization``,
  ``encoder.stages.1.layers.0.shortcut.convolution`` ...

Both compute the same network (7x7 stem and max-pool, four stages of basic or bottleneck blocks,
stride in the 3x3 convolution, 1x1 convolution + norm shortcuts), so :class:`TimmResNet` and
:class:`ResNetBackbone` here are the same maths under two sets of names, and
:func:`~polyformers_detr.checkpoint_names.timm_to_native_key` / ``native_to_timm_key`` translate between them. The model is
built with the layout its config names, so its checkpoints load back into Transformers; a
checkpoint in the other layout is renamed on load.

``dilation=True`` (DC5) exists for the timm layout only, as in Transformers: the last stage keeps
stride 1 and dilates its 3x3 convolutions by 2, so the last feature map has stride 16, not 32
(:func:`~polyformers_detr.configuration_detr.resnet_block_schedule` gives the per-block numbers).

Why here and not in a ``resnet`` plugin: DETR needs only a feature-map backbone with frozen batch
norm, not ResNet's classification models, configs or image processing, and a plugin may import a
sibling plugin only by declaring it as a dependency. When a ``polyformers-resnet`` plugin exists,
:class:`ResNetBackbone` should move there (as ``ResNetBackbone`` with a ``FrozenBatchNorm2d`` swap)
and this module should import it, keeping the key translation.

Shapes: B batch, C channels, H x W feature map.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from polyformers.activations import ACT2FN

from .configuration_detr import resnet_block_schedule


class DetrFrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine parameters, all four stored as buffers.

    The epsilon is added before the rsqrt, as in Transformers (torchvision's version has none,
    which gives NaNs for backbones other than torchvision's ResNets).
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight.reshape(1, -1, 1, 1) * (self.running_var.reshape(1, -1, 1, 1) + self.eps).rsqrt()
        bias = self.bias.reshape(1, -1, 1, 1) - self.running_mean.reshape(1, -1, 1, 1) * scale
        return x * scale + bias


# --- what the config asks for ----------------------------------------------------------------------

# timm ResNets DETR checkpoints use: (block type, depths). Widths are 64..512 times the expansion.
_TIMM_RESNETS = {
    "resnet18": ("basic", [2, 2, 2, 2]),
    "resnet34": ("basic", [3, 4, 6, 3]),
    "resnet50": ("bottleneck", [3, 4, 6, 3]),
    "resnet101": ("bottleneck", [3, 4, 23, 3]),
    "resnet152": ("bottleneck", [3, 8, 36, 3]),
}


@dataclass
class BackboneSpec:
    """The ResNet a DETR config describes, whatever way the config spells it."""

    layout: str  # "timm" or "native"
    num_channels: int = 3
    embedding_size: int = 64
    hidden_sizes: list[int] = field(default_factory=lambda: [256, 512, 1024, 2048])
    depths: list[int] = field(default_factory=lambda: [3, 4, 6, 3])
    layer_type: str = "bottleneck"
    hidden_act: str = "relu"
    downsample_in_first_stage: bool = False
    downsample_in_bottleneck: bool = False
    out_indices: list[int] = field(default_factory=lambda: [1, 2, 3, 4])  # 0 is the stem
    dilation: bool = False  # DC5: the last stage dilated instead of strided (timm layout only)

    @property
    def channels(self) -> list[int]:
        sizes = [self.embedding_size, *self.hidden_sizes]
        return [sizes[i] for i in self.out_indices]


def _get(source: Any, name: str, default: Any = None) -> Any:
    if source is None:
        return default
    if isinstance(source, dict):
        return source.get(name, default)
    return getattr(source, name, default)


def backbone_spec(config: Any) -> BackboneSpec:
    """Read the backbone from a DETR config in the 4.x spelling or the 5.x one.

    4.x: ``use_timm_backbone`` + ``backbone`` (+ ``backbone_kwargs``), or ``backbone_config`` (a
    ResNet config). 5.x: ``backbone_config`` alone, a ``timm_backbone`` dict or a ResNet config.
    Our ``DetrConfig`` already normalises both into ``config.resnet``; it is used when present.
    """
    resnet = getattr(config, "resnet", None)
    if resnet is not None:
        if resnet.dilation and resnet.kind != "timm":
            raise _native_dilation_error()
        return BackboneSpec(
            layout=resnet.kind,
            num_channels=resnet.num_channels,
            embedding_size=resnet.embedding_size,
            hidden_sizes=list(resnet.hidden_sizes),
            depths=list(resnet.depths),
            layer_type=resnet.layer_type,
            hidden_act=resnet.hidden_act,
            downsample_in_first_stage=resnet.downsample_in_first_stage,
            downsample_in_bottleneck=resnet.downsample_in_bottleneck,
            out_indices=list(resnet.out_indices),
            dilation=bool(resnet.dilation),
        )
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
        expansion = 4 if layer_type == "bottleneck" else 1
        out_indices = _get(backbone_config, "out_indices") or kwargs.get("out_indices") or [1, 2, 3, 4]
        return BackboneSpec(
            layout="timm",
            num_channels=_get(backbone_config, "num_channels") or kwargs.get("in_chans") or num_channels,
            embedding_size=64,
            hidden_sizes=[w * expansion for w in (64, 128, 256, 512)],
            depths=list(depths),
            layer_type=layer_type,
            out_indices=list(out_indices),
            dilation=bool(_get(config, "dilation")) or output_stride == 16,
        )
    if backbone_config is None:
        backbone_config = {}  # use_timm_backbone=False without a backbone_config: Transformers' default ResNet-50
    if _get(config, "dilation"):
        raise _native_dilation_error()
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
    return BackboneSpec(
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


def _native_dilation_error() -> ValueError:
    return ValueError(
        "dilation=True (DC5) needs a timm backbone: Transformers' own ResNetBackbone has no dilation. "
        "Set dilation=False, or use use_timm_backbone=True with backbone='resnet50' (or another timm ResNet)."
    )


def _stage_strides(spec: BackboneSpec) -> list[int]:
    return [2 if spec.downsample_in_first_stage else 1] + [2] * (len(spec.hidden_sizes) - 1)


def _select(features: list[torch.Tensor], out_indices: list[int]) -> list[torch.Tensor]:
    return [features[i] for i in out_indices]


# --- Transformers' own ResNet layout ---------------------------------------------------------------


class ResNetConvLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, activation: str | None = "relu") -> None:
        super().__init__()
        self.convolution = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False)
        self.normalization = DetrFrozenBatchNorm2d(out_channels)
        self.activation = ACT2FN[activation] if activation is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.normalization(self.convolution(x)))


class ResNetEmbeddings(nn.Module):
    def __init__(self, spec: BackboneSpec) -> None:
        super().__init__()
        self.embedder = ResNetConvLayer(spec.num_channels, spec.embedding_size, kernel_size=7, stride=2, activation=spec.hidden_act)
        self.pooler = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.pooler(self.embedder(pixel_values))


class ResNetShortCut(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.convolution = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)
        self.normalization = DetrFrozenBatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.normalization(self.convolution(x))


class ResNetBasicLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, activation: str = "relu", **_: Any) -> None:
        super().__init__()
        needs_shortcut = in_channels != out_channels or stride != 1
        self.shortcut = ResNetShortCut(in_channels, out_channels, stride) if needs_shortcut else nn.Identity()
        self.layer = nn.Sequential(
            ResNetConvLayer(in_channels, out_channels, stride=stride, activation=activation),
            ResNetConvLayer(out_channels, out_channels, activation=None),
        )
        self.activation = ACT2FN[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.layer(x) + self.shortcut(x))


class ResNetBottleNeckLayer(nn.Module):
    """1x1 reduce, 3x3 (the stride, unless ``downsample_in_bottleneck``), 1x1 expand."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        activation: str = "relu",
        reduction: int = 4,
        downsample_in_bottleneck: bool = False,
    ) -> None:
        super().__init__()
        needs_shortcut = in_channels != out_channels or stride != 1
        reduced = out_channels // reduction
        self.shortcut = ResNetShortCut(in_channels, out_channels, stride) if needs_shortcut else nn.Identity()
        self.layer = nn.Sequential(
            ResNetConvLayer(in_channels, reduced, kernel_size=1, stride=stride if downsample_in_bottleneck else 1, activation=activation),
            ResNetConvLayer(reduced, reduced, stride=1 if downsample_in_bottleneck else stride, activation=activation),
            ResNetConvLayer(reduced, out_channels, kernel_size=1, activation=None),
        )
        self.activation = ACT2FN[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.layer(x) + self.shortcut(x))


class ResNetStage(nn.Module):
    def __init__(self, spec: BackboneSpec, in_channels: int, out_channels: int, stride: int, depth: int) -> None:
        super().__init__()
        layer = ResNetBottleNeckLayer if spec.layer_type == "bottleneck" else ResNetBasicLayer
        extra = {"downsample_in_bottleneck": spec.downsample_in_bottleneck}
        self.layers = nn.Sequential(
            layer(in_channels, out_channels, stride=stride, activation=spec.hidden_act, **extra),
            *[layer(out_channels, out_channels, activation=spec.hidden_act, **extra) for _ in range(depth - 1)],
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ResNetEncoder(nn.Module):
    def __init__(self, spec: BackboneSpec) -> None:
        super().__init__()
        in_sizes = [spec.embedding_size, *spec.hidden_sizes[:-1]]
        self.stages = nn.ModuleList(
            ResNetStage(spec, i, o, s, d) for i, o, s, d in zip(in_sizes, spec.hidden_sizes, _stage_strides(spec), spec.depths)
        )


class ResNetBackbone(nn.Module):
    """Transformers' ``ResNetBackbone`` layout: ``embedder.embedder.*``, ``encoder.stages.N.layers.M.*``."""

    def __init__(self, spec: BackboneSpec) -> None:
        super().__init__()
        if spec.dilation:
            raise _native_dilation_error()
        self.out_indices = spec.out_indices
        self.embedder = ResNetEmbeddings(spec)
        self.encoder = ResNetEncoder(spec)

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        features = [self.embedder(pixel_values)]  # index 0: the stem, after max-pooling
        for stage in self.encoder.stages:
            features.append(stage(features[-1]))
        return _select(features, self.out_indices)


# --- timm's layout -------------------------------------------------------------------------------------


class TimmBasicBlock(nn.Module):
    """3x3 (stride, ``first_dilation``), 3x3 (``dilation``); padding equals dilation, as timm's."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, first_dilation: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=first_dilation, dilation=first_dilation, bias=False)
        self.bn1 = DetrFrozenBatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = DetrFrozenBatchNorm2d(out_channels)
        self.downsample = _timm_downsample(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(out + shortcut)


class TimmBottleneck(nn.Module):
    """1x1, 3x3 (stride, ``first_dilation``), 1x1; ``dilation`` only matters to the next block (timm's signature)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, first_dilation: int = 1, dilation: int = 1) -> None:
        super().__init__()
        width = out_channels // 4
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = DetrFrozenBatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=first_dilation, dilation=first_dilation, bias=False)
        self.bn2 = DetrFrozenBatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = DetrFrozenBatchNorm2d(out_channels)
        self.downsample = _timm_downsample(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(out + shortcut)


def _timm_downsample(in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    if in_channels == out_channels and stride == 1:
        return None
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), DetrFrozenBatchNorm2d(out_channels))


class TimmResNet(nn.Module):
    """timm's ``resnetNN`` with ``features_only=True`` layout: ``conv1``, ``bn1``, ``layer1``..``layer4``."""

    def __init__(self, spec: BackboneSpec) -> None:
        super().__init__()
        self.out_indices = spec.out_indices
        self.conv1 = nn.Conv2d(spec.num_channels, spec.embedding_size, 7, stride=2, padding=3, bias=False)
        self.bn1 = DetrFrozenBatchNorm2d(spec.embedding_size)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        block = TimmBottleneck if spec.layer_type == "bottleneck" else TimmBasicBlock
        in_sizes = [spec.embedding_size, *spec.hidden_sizes[:-1]]
        schedule = resnet_block_schedule(spec.depths, spec.downsample_in_first_stage, spec.dilation)
        for n, (i, o, blocks) in enumerate(zip(in_sizes, spec.hidden_sizes, schedule), start=1):
            # each block: (stride, first_dilation, dilation); only the first one strides or changes width
            layer = [block(i if b == 0 else o, o, *args) for b, args in enumerate(blocks)]
            self.add_module(f"layer{n}", nn.Sequential(*layer))

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        stem = torch.relu(self.bn1(self.conv1(pixel_values)))
        features = [stem]  # index 0 in timm's feature_info is before the max-pool
        x = self.maxpool(stem)
        for n in range(1, 5):
            x = getattr(self, f"layer{n}")(x)
            features.append(x)
        return _select(features, self.out_indices)


def build_resnet(spec: BackboneSpec) -> nn.Module:
    return TimmResNet(spec) if spec.layout == "timm" else ResNetBackbone(spec)
