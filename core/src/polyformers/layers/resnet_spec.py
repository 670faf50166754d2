"""The ResNet backbone described without a framework: its spec, its block schedule, its two weight layouts.

Transformers builds a ResNet feature backbone (DETR's, Conditional DETR's, Table Transformer's,
MaskFormer's...) in one of two ways, and the parameter names differ:

* a **timm** ResNet (``use_timm_backbone=True`` in 4.x, a ``timm_backbone`` ``backbone_config`` in
  5.x; the layout of ``facebook/detr-resnet-50``): ``conv1``, ``bn1``, ``layer1.0.conv1``,
  ``layer1.0.downsample.0`` / ``.1`` ...
* its own **ResNetBackbone**, when ``backbone_config`` is a ``ResNetConfig`` (the *native* layout):
  ``embedder.embedder.convolution``, ``encoder.stages.0.layers.0.layer.0.normalization``,
  ``encoder.stages.1.layers.0.shortcut.convolution`` ...

Both compute the same network (7x7 stem and max-pool, stages of basic or bottleneck blocks, stride
in the 3x3 convolution, 1x1 convolution + norm shortcuts), so the backbones in
:mod:`polyformers.layers.resnet` (PyTorch), ``resnet_tf`` and ``resnet_flax`` are the same maths
under two sets of names, and :func:`native_to_timm_key` / :func:`timm_to_native_key` translate
between them (names inside the backbone; a model adds its own prefix).

``dilation=True`` (DC5) exists for the timm layout only, as in Transformers: the last stage keeps
stride 1 and dilates its 3x3 convolutions by 2, so the last feature map has stride 16, not 32
(:func:`resnet_block_schedule` gives the per-block numbers).

Reading a model config into a :class:`ResNetSpec` is left to each plugin (its config spells the
backbone its own way); :meth:`ResNetSpec.from_timm_name` covers the timm names they all accept.
No framework is imported here.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

LAYOUTS = ("timm", "native")
LAYER_TYPES = ("basic", "bottleneck")

# timm ResNets that Transformers' vision models use as backbones: name -> (layer type, depths).
# Widths are 64..512 times the block expansion (1 for basic, 4 for bottleneck).
TIMM_RESNETS: dict[str, tuple[str, tuple[int, ...]]] = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)),
}
WIDTHS = {"basic": (64, 128, 256, 512), "bottleneck": (256, 512, 1024, 2048)}

NATIVE_DILATION_MESSAGE = (
    "dilation=True (DC5) needs a timm backbone: Transformers' own ResNetBackbone has no dilation. "
    "Set dilation=False, or use use_timm_backbone=True with backbone='resnet50' (or another timm ResNet)."
)


def native_dilation_error() -> ValueError:
    """The error for ``dilation=True`` with the native layout (which has no dilation in Transformers)."""
    return ValueError(NATIVE_DILATION_MESSAGE)


@dataclasses.dataclass(frozen=True)
class ResNetSpec:
    """A ResNet feature backbone, whatever config spelled it; frozen and hashable (a Flax module field).

    ``out_indices`` picks the returned feature maps: 0 is the stem (timm: before the max-pool;
    native: after it, as each library returns it), 1..len(depths) the stages. Sequences are stored
    as tuples.
    """

    layout: str  # "timm" or "native": the parameter names, see the module docstring
    num_channels: int = 3
    embedding_size: int = 64
    hidden_sizes: tuple[int, ...] = (256, 512, 1024, 2048)
    depths: tuple[int, ...] = (3, 4, 6, 3)
    layer_type: str = "bottleneck"
    hidden_act: str = "relu"
    downsample_in_first_stage: bool = False
    downsample_in_bottleneck: bool = False
    out_indices: tuple[int, ...] = (1, 2, 3, 4)
    dilation: bool = False  # DC5: the last stage dilated instead of strided (timm layout only)

    def __post_init__(self) -> None:
        for name in ("hidden_sizes", "depths", "out_indices"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.layout not in LAYOUTS:
            raise ValueError(f"ResNetSpec layout must be one of {LAYOUTS}, got {self.layout!r}.")
        if self.layer_type not in LAYER_TYPES:
            raise ValueError(f"ResNetSpec layer_type must be one of {LAYER_TYPES}, got {self.layer_type!r}.")
        if len(self.hidden_sizes) != len(self.depths):
            raise ValueError(
                f"ResNetSpec needs one hidden size per stage: got {len(self.hidden_sizes)} hidden_sizes "
                f"{list(self.hidden_sizes)} for {len(self.depths)} depths {list(self.depths)}."
            )
        if self.dilation and self.layout != "timm":
            raise native_dilation_error()

    @classmethod
    def from_timm_name(cls, name: str, **overrides: object) -> ResNetSpec:
        """The spec of timm's ``name`` (``"resnet50"``...) in the timm layout; ``overrides`` set other fields."""
        if name not in TIMM_RESNETS:
            raise ValueError(f"timm backbone {name!r} is not a supported ResNet; supported: {sorted(TIMM_RESNETS)}.")
        layer_type, depths = TIMM_RESNETS[name]
        fields = {"layout": "timm", "embedding_size": 64, "hidden_sizes": WIDTHS[layer_type], "depths": depths, "layer_type": layer_type}
        return cls(**{**fields, **overrides})

    @property
    def channels(self) -> list[int]:
        """Channels of each returned feature map, in ``out_indices`` order."""
        sizes = [self.embedding_size, *self.hidden_sizes]
        return [sizes[i] for i in self.out_indices]

    def stage_strides(self) -> list[int]:
        """The stride of each stage's first block in the native layout (which never dilates)."""
        return [2 if self.downsample_in_first_stage else 1] + [2] * (len(self.hidden_sizes) - 1)


# (stride, first_dilation, dilation) of one residual block: the stride and dilation of its first
# 3x3 convolution (the one that strides), and the dilation of the basic block's second 3x3.
BlockSchedule = tuple[int, int, int]


def resnet_block_schedule(
    depths: Sequence[int], downsample_in_first_stage: bool = False, dilation: bool = False
) -> list[list[BlockSchedule]]:
    """Per stage, per block ``(stride, first_dilation, dilation)``, as timm's ``make_blocks`` computes them.

    The stem reduces by 4; stage 1 keeps that resolution (halves it with ``downsample_in_first_stage``),
    later stages halve it. With ``dilation`` (DC5; Transformers asks timm for ``output_stride=16``)
    a stage that starts at stride 16 or more keeps stride 1 and doubles the dilation instead: for
    ResNets that is stage 4, whose first block still uses the previous dilation (1) in its first 3x3
    convolution and dilation 2 after it. Shortcuts stay 1x1 with the block's stride.
    Pure Python, shared by the PyTorch, TensorFlow and Flax backbones.
    """
    output_stride = 16 if dilation else None  # None: never dilate, as Transformers' own ResNet
    net_stride, current_dilation, previous_dilation = 4, 1, 1
    schedule = []
    for n, depth in enumerate(depths):
        stride = (2 if downsample_in_first_stage else 1) if n == 0 else 2
        if output_stride is not None and net_stride >= output_stride:
            current_dilation *= stride
            stride = 1
        else:
            net_stride *= stride
        blocks = []
        for b in range(depth):
            blocks.append((stride if b == 0 else 1, previous_dilation, current_dilation))
            previous_dilation = current_dilation
        schedule.append(blocks)
    return schedule


# --- the two weight layouts ------------------------------------------------------------------------------

_NATIVE_TO_TIMM = (
    (re.compile(r"embedder\.embedder\.convolution\."), lambda m: "conv1."),
    (re.compile(r"embedder\.embedder\.normalization\."), lambda m: "bn1."),
    (re.compile(r"encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.convolution\."), lambda m: f"layer{int(m[1]) + 1}.{m[2]}.downsample.0."),
    (re.compile(r"encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.normalization\."), lambda m: f"layer{int(m[1]) + 1}.{m[2]}.downsample.1."),
    (re.compile(r"encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d+)\.convolution\."), lambda m: f"layer{int(m[1]) + 1}.{m[2]}.conv{int(m[3]) + 1}."),
    (re.compile(r"encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d+)\.normalization\."), lambda m: f"layer{int(m[1]) + 1}.{m[2]}.bn{int(m[3]) + 1}."),
)
_TIMM_TO_NATIVE = (
    (re.compile(r"^conv1\."), lambda m: "embedder.embedder.convolution."),
    (re.compile(r"^bn1\."), lambda m: "embedder.embedder.normalization."),
    (re.compile(r"^layer(\d+)\.(\d+)\.downsample\.0\."), lambda m: f"encoder.stages.{int(m[1]) - 1}.layers.{m[2]}.shortcut.convolution."),
    (re.compile(r"^layer(\d+)\.(\d+)\.downsample\.1\."), lambda m: f"encoder.stages.{int(m[1]) - 1}.layers.{m[2]}.shortcut.normalization."),
    (re.compile(r"^layer(\d+)\.(\d+)\.conv(\d+)\."), lambda m: f"encoder.stages.{int(m[1]) - 1}.layers.{m[2]}.layer.{int(m[3]) - 1}.convolution."),
    (re.compile(r"^layer(\d+)\.(\d+)\.bn(\d+)\."), lambda m: f"encoder.stages.{int(m[1]) - 1}.layers.{m[2]}.layer.{int(m[3]) - 1}.normalization."),
)


def _translate(name: str, rules: tuple) -> str:
    for pattern, replace in rules:
        match = pattern.search(name)
        if match:
            return name[: match.start()] + replace(match) + name[match.end() :]
    return name


def native_to_timm_key(name: str) -> str:
    """``embedder.embedder.convolution.weight`` -> ``conv1.weight`` (PyTorch names inside the backbone)."""
    return _translate(name, _NATIVE_TO_TIMM)


def timm_to_native_key(name: str) -> str:
    """``layer2.0.downsample.1.running_var`` -> ``encoder.stages.1.layers.0.shortcut.normalization.running_var``."""
    return _translate(name, _TIMM_TO_NATIVE)


def to_layout_key(name: str, layout: str) -> str:
    """A backbone name of either layout -> its name in ``layout`` (``"timm"`` or ``"native"``)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}.")
    return native_to_timm_key(name) if layout == "timm" else timm_to_native_key(name)
