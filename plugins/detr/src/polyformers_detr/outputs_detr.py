"""DETR's output classes, framework-free: the PyTorch, TensorFlow and Flax models return the same fields.

Shapes: B batch, Q queries, K classes (+1 for "no object"), D d_model, L decoder layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from polyformers.modeling_outputs import ModelOutput


@dataclass(repr=False)
class DetrModelOutput(ModelOutput):
    """``intermediate_hidden_states`` (L, B, Q, D): every decoder layer's output after the final LayerNorm, with ``auxiliary_loss``."""

    last_hidden_state: Any = None
    decoder_hidden_states: Any = None
    decoder_attentions: Any = None
    cross_attentions: Any = None
    encoder_last_hidden_state: Any = None
    encoder_hidden_states: Any = None
    encoder_attentions: Any = None
    intermediate_hidden_states: Any = None


@dataclass(repr=False)
class DetrObjectDetectionOutput(ModelOutput):
    """``logits`` (B, Q, K); ``pred_boxes`` (B, Q, 4) as normalised (cx, cy, w, h); loss terms with ``labels``."""

    loss: Any = None
    loss_dict: Any = None
    logits: Any = None
    pred_boxes: Any = None
    auxiliary_outputs: Any = None
    last_hidden_state: Any = None
    decoder_hidden_states: Any = None
    decoder_attentions: Any = None
    cross_attentions: Any = None
    encoder_last_hidden_state: Any = None
    encoder_hidden_states: Any = None
    encoder_attentions: Any = None


@dataclass(repr=False)
class DetrSegmentationOutput(ModelOutput):
    """As :class:`DetrObjectDetectionOutput`, plus ``pred_masks`` (B, Q, H/4, W/4) mask logits."""

    loss: Any = None
    loss_dict: Any = None
    logits: Any = None
    pred_boxes: Any = None
    pred_masks: Any = None
    auxiliary_outputs: Any = None
    last_hidden_state: Any = None
    decoder_hidden_states: Any = None
    decoder_attentions: Any = None
    cross_attentions: Any = None
    encoder_last_hidden_state: Any = None
    encoder_hidden_states: Any = None
    encoder_attentions: Any = None
