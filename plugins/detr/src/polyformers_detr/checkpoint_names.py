"""Weight names across DETR checkpoints, framework-free: one table for the PyTorch, TensorFlow and Flax models.

A DETR checkpoint may come from Transformers 4 or 5 (5 renamed some layers in memory and a few
on disk), from any of the three classes (a detection checkpoint loads into the segmentation
model: its DetrModel sits under ``model.`` in one and ``detr.model.`` in the other), and with
either ResNet layout (timm's ``layer1.0.conv1`` or Transformers' ``encoder.stages.0.layers.0``).
:func:`rename_checkpoint_keys` maps the PyTorch names of any of them to what one model reads.
No framework is imported here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")

# Transformers 5's in-memory names -> the checkpoint names (its save_pretrained converts the same way).
V5_RENAMES = [
    (re.compile(r"\.o_proj\."), ".out_proj."),
    (re.compile(r"\.mlp\.fc([12])\."), r".fc\1."),
    (re.compile(r"bbox_attention\.q_proj\."), "bbox_attention.q_linear."),
    (re.compile(r"bbox_attention\.k_proj\."), "bbox_attention.k_linear."),
    (re.compile(r"mask_head\.conv([12])\.conv\."), r"mask_head.lay\1."),
    (re.compile(r"mask_head\.conv([12])\.norm\."), r"mask_head.gn\1."),
    (re.compile(r"mask_head\.fpn_stages\.(\d)\.fpn_adapter\."), lambda m: f"mask_head.adapter{int(m[1]) + 1}."),
    (re.compile(r"mask_head\.fpn_stages\.(\d)\.refine\.conv\."), lambda m: f"mask_head.lay{int(m[1]) + 3}."),
    (re.compile(r"mask_head\.fpn_stages\.(\d)\.refine\.norm\."), lambda m: f"mask_head.gn{int(m[1]) + 3}."),
    (re.compile(r"mask_head\.output_conv\."), "mask_head.out_lay."),
    (re.compile(r"(^|\.)backbone\.model\."), r"\1backbone.conv_encoder.model."),
    (re.compile(r"(^|\.)backbone\.position_embedding\."), r"\1position_embedding."),  # Transformers 4's place
]
BACKBONE = "backbone.conv_encoder.model."
# Where the DetrModel sits in each class's checkpoint.
DETR_MODEL_PATH = {"DetrModel": "", "DetrForObjectDetection": "model.", "DetrForSegmentation": "detr.model."}

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
    """``embedder.embedder.convolution.weight`` -> ``conv1.weight`` (names inside the backbone)."""
    return _translate(name, _NATIVE_TO_TIMM)


def timm_to_native_key(name: str) -> str:
    """``layer2.0.downsample.1.running_var`` -> ``encoder.stages.1.layers.0.shortcut.normalization.running_var``."""
    return _translate(name, _TIMM_TO_NATIVE)


def source_class(keys: Any) -> str:
    """Which DETR class wrote a PyTorch checkpoint: segmentation keys start with ``detr.``, detection ones with ``model.``."""
    keys = list(keys)
    if any(k.startswith("detr.") for k in keys):
        return "DetrForSegmentation"
    if any(k.startswith("model.") for k in keys):
        return "DetrForObjectDetection"
    return "DetrModel"


def rename_checkpoint_keys(state: Mapping[str, T], target_class: str, layout: str) -> dict[str, T]:
    """PyTorch names of any DETR class / Transformers version / ResNet layout -> those ``target_class`` reads.

    ``target_class`` is ``"DetrModel"``, ``"DetrForObjectDetection"`` or ``"DetrForSegmentation"``
    (a TF/Flax class name without its prefix); ``layout`` is the model's backbone layout,
    ``"timm"`` or ``"native"``.
    """
    ours = DETR_MODEL_PATH[target_class]
    theirs = DETR_MODEL_PATH[source_class(state)]
    # The head of a detection model sits under "detr." in a segmentation model.
    their_head, our_head = theirs[: -len("model.")], ours[: -len("model.")] if ours else None
    renamed = {}
    for key, value in state.items():
        for pattern, replacement in V5_RENAMES:
            key = pattern.sub(replacement, key)
        if key.startswith(theirs):
            key = ours + key[len(theirs) :]
        elif our_head is not None and key.startswith(their_head):
            key = our_head + key[len(their_head) :]
        if BACKBONE in key:
            prefix, inner = key.split(BACKBONE, 1)
            key = prefix + BACKBONE + (native_to_timm_key(inner) if layout == "timm" else timm_to_native_key(inner))
        renamed[key] = value
    return renamed
