"""Framework-free arithmetic the PyTorch, TensorFlow and Flax Wav2Vec2 models share.

- :func:`conv_output_lengths`: how many frames the conv feature encoder (and the adapter) makes of
  a number of samples; works on ints and on any framework's integer arrays (``//`` is floor
  division in all of them).
- :func:`compute_mask_indices`: SpecAugment's random spans, in NumPy with Transformers' algorithm
  and order of random draws, so a seeded run masks the same frames in every framework.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .configuration_wav2vec2 import Wav2Vec2Config


def conv_output_lengths(config: Wav2Vec2Config, input_lengths: Any, add_adapter: bool | None = None) -> Any:
    """Frames the conv stack (and, with ``add_adapter``, the adapter) makes of ``input_lengths`` samples."""
    add_adapter = config.add_adapter if add_adapter is None else add_adapter
    for kernel_size, stride in zip(config.conv_kernel, config.conv_stride):
        input_lengths = (input_lengths - kernel_size) // stride + 1
    if add_adapter:
        for _ in range(config.num_adapter_layers):
            input_lengths = (input_lengths - 1) // config.adapter_stride + 1
    return input_lengths


def compute_mask_indices(shape: tuple[int, int], mask_prob: float, mask_length: int, lengths: Any = None, min_masks: int = 0) -> np.ndarray:
    """Random spans to mask (SpecAugment), as a (B, T) boolean array.

    ``lengths`` holds each row's unpadded length (default: all ``T``); about ``mask_prob * length /
    mask_length`` spans of ``mask_length`` start in each row (at least ``min_masks``).
    """
    batch_size, sequence_length = shape
    if mask_length < 1:
        raise ValueError(f"mask_length must be at least 1, got {mask_length}; raise mask_time_length/mask_feature_length.")
    if mask_length > sequence_length:
        raise ValueError(
            f"mask_length ({mask_length}) must be at most the sequence length ({sequence_length}); "
            "use longer audio or a smaller mask length."
        )
    epsilon = np.random.rand(1).item()  # makes the number of spans round up or down at random

    def num_spans(input_length: int) -> int:
        n = max(int(mask_prob * input_length / mask_length + epsilon), min_masks)
        if n * mask_length > sequence_length:
            n = sequence_length // mask_length
        if input_length - (mask_length - 1) < n:
            n = max(input_length - (mask_length - 1), 0)
        return n

    input_lengths = [int(n) for n in lengths] if lengths is not None else [sequence_length] * batch_size
    mask = np.zeros((batch_size, sequence_length), dtype=bool)
    max_spans = num_spans(sequence_length)
    if max_spans == 0:
        return mask
    span_starts = []
    for input_length in input_lengths:
        n = num_spans(input_length)
        starts = np.random.choice(np.arange(input_length - (mask_length - 1)), n, replace=False)
        dummy = starts[0] if len(starts) else sequence_length - 1  # pad with a repeated start
        span_starts.append(np.concatenate([starts, np.full(max_spans - n, dummy, dtype=np.int64)]))
    indices = (np.array(span_starts)[:, :, None] + np.arange(mask_length)[None, None, :]).reshape(batch_size, -1)
    np.put_along_axis(mask, np.minimum(indices, sequence_length - 1), True, -1)
    return mask
