"""Small PyTorch helpers shared by every family: head pruning and chunked feed-forwards."""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn


def find_pruneable_heads_and_indices(
    heads: Iterable[int], n_heads: int, head_size: int, already_pruned_heads: set[int]
) -> tuple[set[int], torch.LongTensor]:
    """The heads still to prune (renumbered past earlier prunings) and the channel indices to keep."""
    mask = torch.ones(n_heads, head_size)
    heads = set(heads) - already_pruned_heads
    for head in heads:
        head = head - sum(1 if h < head else 0 for h in already_pruned_heads)
        mask[head] = 0
    index = torch.arange(len(mask.view(-1)))[mask.view(-1).eq(1)].long()
    return heads, index


def prune_linear_layer(layer: nn.Linear, index: torch.LongTensor, dim: int = 0) -> nn.Linear:
    """A copy of ``layer`` keeping only ``index`` along ``dim`` (0: outputs, 1: inputs)."""
    index = index.to(layer.weight.device)
    weight = layer.weight.index_select(dim, index).detach().clone()
    bias = None
    if layer.bias is not None:
        bias = (layer.bias if dim == 1 else layer.bias[index]).detach().clone()
    new_size = list(layer.weight.size())
    new_size[dim] = len(index)
    new_layer = nn.Linear(new_size[1], new_size[0], bias=bias is not None).to(layer.weight.device, layer.weight.dtype)
    with torch.no_grad():
        new_layer.weight.copy_(weight)
        if bias is not None:
            new_layer.bias.copy_(bias)
    return new_layer


def apply_chunking_to_forward(forward_fn: Callable[..., torch.Tensor], chunk_size: int, chunk_dim: int, *input_tensors: torch.Tensor) -> torch.Tensor:
    """Run ``forward_fn`` on ``chunk_size`` slices along ``chunk_dim`` to save memory (0: no chunking)."""
    if chunk_size <= 0:
        return forward_fn(*input_tensors)
    length = input_tensors[0].shape[chunk_dim]
    if length % chunk_size != 0:
        raise ValueError(f"The dimension to chunk ({length}) must be a multiple of chunk_size_feed_forward ({chunk_size}).")
    chunks = zip(*(t.chunk(length // chunk_size, dim=chunk_dim) for t in input_tensors))
    return torch.cat([forward_fn(*c) for c in chunks], dim=chunk_dim)
