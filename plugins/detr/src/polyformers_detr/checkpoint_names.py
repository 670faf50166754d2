"""Weight names across DETR checkpoints, framework-free: one table for the PyTorch, TensorFlow and Flax models.

A DETR checkpoint may come from Transformers 4 or 5 (5 renamed some layers in memory and a few
on disk), from any of the three classes (a detection checkpoint loads into the segmentation
model: its DetrModel sits under ``model.`` in one and ``detr.model.`` in the other), and with
either ResNet layout (timm's ``layer1.0.conv1`` or Transformers' ``encoder.stages.0.layers.0``;
the translation between the two lives in :mod:`polyformers.layers.resnet_spec`).
:func:`rename_checkpoint_keys` maps the PyTorch names of any of them to what one model reads.
No framework is imported here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

# The ResNet layouts' key translation is shared with other vision plugins; re-exported for old imports.
from polyformers.layers.resnet_spec import native_to_timm_key, timm_to_native_key, to_layout_key

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
            key = prefix + BACKBONE + to_layout_key(inner, layout)
        renamed[key] = value
    return renamed


__all__ = [
    "BACKBONE",
    "DETR_MODEL_PATH",
    "V5_RENAMES",
    "native_to_timm_key",
    "rename_checkpoint_keys",
    "source_class",
    "timm_to_native_key",
]
