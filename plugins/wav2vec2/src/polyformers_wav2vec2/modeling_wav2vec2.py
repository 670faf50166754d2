"""Wav2Vec2 in PyTorch: the conv feature encoder, the Transformer encoder, then the model and its heads.

Parameter names are part of the checkpoint format shared with Transformers and stay as it spells
them. Shapes: B batch, L audio samples, T frames, C hidden size, H heads, D head size.

Hidden states follow Transformers 5.x: the input of the first encoder layer, then each layer's
output (for ``do_stable_layer_norm`` the last one is before the final LayerNorm).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn import CrossEntropyLoss

from polyformers.activations import ACT2FN
from polyformers.modeling_outputs import ModelOutput, SequenceClassifierOutput, TokenClassifierOutput
from polyformers.modeling_utils import PreTrainedModel

from ._common import compute_mask_indices, conv_output_lengths
from .configuration_wav2vec2 import Wav2Vec2Config

logger = logging.getLogger(__name__)


# --- outputs ---------------------------------------------------------------------------------------


@dataclass(repr=False)
class Wav2Vec2BaseModelOutput(ModelOutput):
    last_hidden_state: Any = None
    extract_features: Any = None
    hidden_states: Any = None
    attentions: Any = None


@dataclass(repr=False)
class Wav2Vec2ForPreTrainingOutput(ModelOutput):
    """Pre-training outputs; the three losses are set only when ``sampled_negative_indices`` are given.

    ``loss`` is ``contrastive_loss + config.diversity_loss_weight * diversity_loss``; both are sums
    over the masked frames, as in the paper. ``projected_states`` and ``projected_quantized_states``
    are (B, T, proj_codevector_dim).
    """

    loss: Any = None
    projected_states: Any = None
    projected_quantized_states: Any = None
    codevector_perplexity: Any = None
    hidden_states: Any = None
    attentions: Any = None
    contrastive_loss: Any = None
    diversity_loss: Any = None


@dataclass(repr=False)
class CausalLMOutput(ModelOutput):
    loss: Any = None
    logits: Any = None
    hidden_states: Any = None
    attentions: Any = None


@dataclass(repr=False)
class XVectorOutput(ModelOutput):
    loss: Any = None
    logits: Any = None
    embeddings: Any = None
    hidden_states: Any = None
    attentions: Any = None


# --- SpecAugment -------------------------------------------------------------------------------------


def _compute_mask_indices(
    shape: tuple[int, int],
    mask_prob: float,
    mask_length: int,
    attention_mask: torch.Tensor | None = None,
    min_masks: int = 0,
) -> np.ndarray:
    """Random spans to mask (SpecAugment), as a (B, T) boolean array; Transformers' signature and algorithm."""
    lengths = attention_mask.detach().sum(-1).tolist() if attention_mask is not None else None
    return compute_mask_indices(shape, mask_prob, mask_length, lengths, min_masks)


def _sample_negative_indices(
    features_shape: tuple[int, int], num_negatives: int, mask_time_indices: np.ndarray | None = None
) -> np.ndarray:
    """Distractors for the contrastive loss, as a (B, T, num_negatives) int32 array; as Transformers.

    For each masked frame, ``num_negatives`` other masked frames of the same row, drawn uniformly
    with replacement but never the frame itself. Indices are into the flattened (B * T) frames, so
    row ``b`` holds values in ``[b * T, (b + 1) * T)``; unmasked frames keep ``b * T``.
    """
    batch_size, sequence_length = features_shape
    frames = np.arange(sequence_length)
    sampled = np.zeros((batch_size, sequence_length, num_negatives), dtype=np.int32)
    mask = mask_time_indices.astype(bool) if mask_time_indices is not None else np.ones(features_shape, dtype=bool)
    for b in range(batch_size):
        num_masked = mask[b].sum()
        masked_frames = frames[mask[b]]
        # Draw from num_masked - 1 values and shift those at or past the positive up by one:
        # uniform over the other masked frames.
        positives = np.broadcast_to(np.arange(num_masked)[:, None], (num_masked, num_negatives))
        draws = np.random.randint(0, num_masked - 1, size=(num_masked, num_negatives))
        draws[draws >= positives] += 1
        sampled[b][mask[b]] = masked_frames[draws]
        sampled[b] += b * sequence_length
    return sampled


# --- feature encoder ---------------------------------------------------------------------------------


class Wav2Vec2NoLayerNormConvLayer(nn.Module):
    # For optimize_for_inference: forward applies activation to conv's output, so they may fuse (see polyformers.inference).
    _inference_fusions = (("conv", "activation"),)

    def __init__(self, config: Wav2Vec2Config, layer_id: int = 0):
        super().__init__()
        in_dim = config.conv_dim[layer_id - 1] if layer_id > 0 else 1
        self.conv = nn.Conv1d(in_dim, config.conv_dim[layer_id], config.conv_kernel[layer_id], stride=config.conv_stride[layer_id], bias=config.conv_bias)
        self.activation = ACT2FN[config.feat_extract_activation]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.conv(hidden_states))


class Wav2Vec2LayerNormConvLayer(Wav2Vec2NoLayerNormConvLayer):
    """Conv, LayerNorm over channels, activation (``feat_extract_norm="layer"``)."""

    _inference_fusions = ()  # a norm sits between conv and activation

    def __init__(self, config: Wav2Vec2Config, layer_id: int = 0):
        super().__init__(config, layer_id)
        self.layer_norm = nn.LayerNorm(config.conv_dim[layer_id], elementwise_affine=True)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.conv(hidden_states)  # (B, C, T)
        hidden_states = self.layer_norm(hidden_states.transpose(-2, -1)).transpose(-2, -1)
        return self.activation(hidden_states)


class Wav2Vec2GroupNormConvLayer(Wav2Vec2NoLayerNormConvLayer):
    """Conv, GroupNorm with one group per channel (normalises over time), activation."""

    _inference_fusions = ()  # a norm sits between conv and activation

    def __init__(self, config: Wav2Vec2Config, layer_id: int = 0):
        super().__init__(config, layer_id)
        out_dim = config.conv_dim[layer_id]
        self.layer_norm = nn.GroupNorm(num_groups=out_dim, num_channels=out_dim, affine=True)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.layer_norm(self.conv(hidden_states)))


class Wav2Vec2FeatureEncoder(nn.Module):
    """Raw audio (B, L) to frames (B, C_conv, T) through the conv stack."""

    def __init__(self, config: Wav2Vec2Config):
        super().__init__()
        if config.feat_extract_norm == "group":
            layers = [Wav2Vec2GroupNormConvLayer(config, 0)]
            layers += [Wav2Vec2NoLayerNormConvLayer(config, i) for i in range(1, config.num_feat_extract_layers)]
        else:
            layers = [Wav2Vec2LayerNormConvLayer(config, i) for i in range(config.num_feat_extract_layers)]
        self.conv_layers = nn.ModuleList(layers)
        self._requires_grad = True

    def _freeze_parameters(self) -> None:
        for param in self.parameters():
            param.requires_grad = False
        self._requires_grad = False

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        hidden_states = input_values[:, None]  # (B, 1, L)
        for conv_layer in self.conv_layers:
            hidden_states = conv_layer(hidden_states)
        return hidden_states


class Wav2Vec2FeatureProjection(nn.Module):
    def __init__(self, config: Wav2Vec2Config):
        super().__init__()
        self.layer_norm = nn.LayerNorm(config.conv_dim[-1], eps=config.layer_norm_eps)
        self.projection = nn.Linear(config.conv_dim[-1], config.hidden_size)
        self.dropout = nn.Dropout(config.feat_proj_dropout)

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        normed = self.layer_norm(hidden_states)  # the quantizer of pre-training reads these
        return self.dropout(self.projection(normed)), normed


class Wav2Vec2PositionalConvEmbedding(nn.Module):
    """Relative positions from a grouped, weight-normed convolution over time."""

    def __init__(self, config: Wav2Vec2Config):
        super().__init__()
        conv = nn.Conv1d(
            config.hidden_size,
            config.hidden_size,
            kernel_size=config.num_conv_pos_embeddings,
            padding=config.num_conv_pos_embeddings // 2,
            groups=config.num_conv_pos_embedding_groups,
        )
        # weight = g * v / ||v||, the norm taken over all but the kernel axis (dim=2).
        self.conv = nn.utils.parametrizations.weight_norm(conv, name="weight", dim=2)
        # An even kernel with padding k // 2 gives one frame too many: drop the last.
        self.num_pad_remove = 1 if config.num_conv_pos_embeddings % 2 == 0 else 0
        self.activation = ACT2FN[config.feat_extract_activation]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.conv(hidden_states.transpose(1, 2))  # (B, C, T + pad)
        if self.num_pad_remove:
            hidden_states = hidden_states[:, :, : -self.num_pad_remove]
        return self.activation(hidden_states).transpose(1, 2)


# --- Transformer encoder ------------------------------------------------------------------------------


class Wav2Vec2Attention(nn.Module):
    """Multi-head self-attention; ``scaled_dot_product_attention`` unless probabilities are requested."""
    _inference_shared_input = (("q_proj", "k_proj", "v_proj"),)  # forward calls them on one input (polyformers.inference)

    def __init__(self, config: Wav2Vec2Config):
        super().__init__()
        self.embed_dim = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = self.embed_dim // self.num_heads
        if self.head_dim * self.num_heads != self.embed_dim:
            raise ValueError(
                f"hidden_size ({self.embed_dim}) must be a multiple of num_attention_heads ({self.num_heads}); "
                "change one of them in the config."
            )
        self.scaling = self.head_dim**-0.5
        self.dropout = config.attention_dropout
        self.k_proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.v_proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.q_proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.out_proj = nn.Linear(self.embed_dim, self.embed_dim)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, T, C = hidden_states.shape

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)

        query, key, value = split(self.q_proj(hidden_states)), split(self.k_proj(hidden_states)), split(self.v_proj(hidden_states))
        dropout = self.dropout if self.training else 0.0
        if output_attentions:
            scores = (query @ key.transpose(-1, -2)) * self.scaling  # (B, H, T, T)
            if attention_mask is not None:
                scores = scores + attention_mask
            probs = F.softmax(scores, dim=-1)
            context = F.dropout(probs, p=dropout, training=self.training) @ value
        else:
            context = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=self.scaling)
            probs = None
        context = context.transpose(1, 2).reshape(B, T, C)
        return self.out_proj(context), probs


class Wav2Vec2FeedForward(nn.Module):
    _inference_fusions = (("intermediate_dense", "intermediate_act_fn"),)  # for optimize_for_inference

    def __init__(self, config: Wav2Vec2Config):
        super().__init__()
        self.intermediate_dropout = nn.Dropout(config.activation_dropout)
        self.intermediate_dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = ACT2FN[config.hidden_act]
        self.output_dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.output_dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.intermediate_dropout(self.intermediate_act_fn(self.intermediate_dense(hidden_states)))
        return self.output_dropout(self.output_dense(hidden_states))


class Wav2Vec2AttnAdapterLayer(nn.Module):
    """A bottleneck adapter added after each stable-layer-norm layer (``adapter_attn_dim``)."""

    _inference_fusions = (("linear_1", "act_fn"),)  # for optimize_for_inference

    def __init__(self, config: Wav2Vec2Config):
        super().__init__()
        self.input_dim = config.adapter_attn_dim
        self.hidden_dim = config.hidden_size
        self.norm = nn.LayerNorm(self.hidden_dim)
        self.linear_1 = nn.Linear(self.hidden_dim, self.input_dim)
        self.act_fn = nn.ReLU()
        self.linear_2 = nn.Linear(self.input_dim, self.hidden_dim)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act_fn(self.linear_1(self.norm(hidden_states))))


class Wav2Vec2EncoderLayer(nn.Module):
    """Post-LayerNorm block: attention, add, norm, feed-forward, add, norm."""

    def __init__(self, config: Wav2Vec2Config):
        super().__init__()
        self.attention = Wav2Vec2Attention(config)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = Wav2Vec2FeedForward(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, output_attentions: bool = False):
        attn, probs = self.attention(hidden_states, attention_mask, output_attentions)
        hidden_states = self.layer_norm(hidden_states + self.dropout(attn))
        hidden_states = self.final_layer_norm(hidden_states + self.feed_forward(hidden_states))
        return hidden_states, probs


class Wav2Vec2EncoderLayerStableLayerNorm(nn.Module):
    """Pre-LayerNorm block (large models), optionally with an attention adapter."""

    def __init__(self, config: Wav2Vec2Config):
        super().__init__()
        self.attention = Wav2Vec2Attention(config)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = Wav2Vec2FeedForward(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.adapter_layer = Wav2Vec2AttnAdapterLayer(config) if config.adapter_attn_dim is not None else None

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, output_attentions: bool = False):
        attn, probs = self.attention(self.layer_norm(hidden_states), attention_mask, output_attentions)
        hidden_states = hidden_states + self.dropout(attn)
        hidden_states = hidden_states + self.feed_forward(self.final_layer_norm(hidden_states))
        if self.adapter_layer is not None:
            hidden_states = hidden_states + self.adapter_layer(hidden_states)
        return hidden_states, probs


class Wav2Vec2Encoder(nn.Module):
    """Positional conv, then the layers; post-LayerNorm, or pre-LayerNorm when ``stable``."""

    def __init__(self, config: Wav2Vec2Config, stable: bool = False):
        super().__init__()
        self.config = config
        self.stable = stable
        self.pos_conv_embed = Wav2Vec2PositionalConvEmbedding(config)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        layer_class = Wav2Vec2EncoderLayerStableLayerNorm if stable else Wav2Vec2EncoderLayer
        self.layers = nn.ModuleList([layer_class(config) for _ in range(config.num_hidden_layers)])
        self.gradient_checkpointing = False

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> tuple[torch.Tensor, tuple | None, tuple | None]:
        additive_mask = None
        if attention_mask is not None:
            hidden_states = hidden_states.masked_fill(~attention_mask[..., None], 0.0)  # padded frames are zero
            additive_mask = torch.zeros(attention_mask.shape, dtype=hidden_states.dtype, device=hidden_states.device)
            additive_mask = additive_mask.masked_fill(~attention_mask, torch.finfo(hidden_states.dtype).min)
            additive_mask = additive_mask[:, None, None, :]  # (B, 1, 1, T): padded keys dropped
        hidden_states = hidden_states + self.pos_conv_embed(hidden_states)
        if not self.stable:
            hidden_states = self.layer_norm(hidden_states)
        hidden_states = self.dropout(hidden_states)

        all_hidden = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer in self.layers:
            if self.training and self.config.layerdrop > 0.0 and torch.rand([]) < self.config.layerdrop:
                continue  # LayerDrop
            if self.gradient_checkpointing and self.training:
                hidden_states, probs = torch.utils.checkpoint.checkpoint(layer, hidden_states, additive_mask, output_attentions, use_reentrant=False)
            else:
                hidden_states, probs = layer(hidden_states, additive_mask, output_attentions)
            if output_hidden_states:
                all_hidden = all_hidden + (hidden_states,)
            if output_attentions:
                all_attentions = all_attentions + (probs,)
        if self.stable:
            hidden_states = self.layer_norm(hidden_states)
        return hidden_states, all_hidden, all_attentions


class Wav2Vec2AdapterLayer(nn.Module):
    def __init__(self, config: Wav2Vec2Config):
        super().__init__()
        self.conv = nn.Conv1d(
            config.output_hidden_size, 2 * config.output_hidden_size, config.adapter_kernel_size, stride=config.adapter_stride, padding=1
        )

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return F.glu(self.conv(hidden_states), dim=1)


class Wav2Vec2Adapter(nn.Module):
    """Strided GLU convolutions that shorten the encoder output (``add_adapter``)."""

    def __init__(self, config: Wav2Vec2Config):
        super().__init__()
        if config.output_hidden_size != config.hidden_size:
            self.proj = nn.Linear(config.hidden_size, config.output_hidden_size)
            self.proj_layer_norm = nn.LayerNorm(config.output_hidden_size)
        else:
            self.proj = self.proj_layer_norm = None
        self.layers = nn.ModuleList(Wav2Vec2AdapterLayer(config) for _ in range(config.num_adapter_layers))
        self.layerdrop = config.layerdrop

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.proj is not None:
            hidden_states = self.proj_layer_norm(self.proj(hidden_states))
        hidden_states = hidden_states.transpose(1, 2)
        for layer in self.layers:
            if not self.training or np.random.random() > self.layerdrop:
                hidden_states = layer(hidden_states)
        return hidden_states.transpose(1, 2)


# --- pre-training: the quantizer ---------------------------------------------------------------------


class Wav2Vec2GumbelVectorQuantizer(nn.Module):
    """Product quantization of the conv features: G groups, each picks one of V codevectors.

    Training picks with a straight-through Gumbel softmax at ``temperature`` (one-hot forward,
    soft gradient); eval takes the argmax. The perplexity of the mean choice, summed over groups,
    measures how much of the codebook is used (the diversity loss pushes it up to G * V).
    """

    def __init__(self, config: Wav2Vec2Config):
        super().__init__()
        self.num_groups = config.num_codevector_groups
        self.num_vars = config.num_codevectors_per_group
        if config.codevector_dim % self.num_groups != 0:
            raise ValueError(
                f"codevector_dim ({config.codevector_dim}) must be a multiple of num_codevector_groups "
                f"({self.num_groups}): each group gives codevector_dim / num_codevector_groups of the vector."
            )
        # (1, G * V, codevector_dim / G): the checkpoint's layout.
        self.codevectors = nn.Parameter(torch.empty(1, self.num_groups * self.num_vars, config.codevector_dim // self.num_groups))
        self.weight_proj = nn.Linear(config.conv_dim[-1], self.num_groups * self.num_vars)
        self.weight_proj.init_scheme = "standard-normal"  # Gumbel logits start at unit scale
        self.temperature = 2  # decayed during training with set_gumbel_temperature

    @staticmethod
    def _compute_perplexity(probs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """exp(entropy) of the mean distribution (B*T, G, V) -> (G, V), summed over groups; masked frames only if given."""
        if mask is not None:
            mask_extended = mask.flatten()[:, None, None].expand(probs.shape)
            probs = torch.where(mask_extended, probs, torch.zeros_like(probs))
            marginal_probs = probs.sum(dim=0) / mask.sum()
        else:
            marginal_probs = probs.mean(dim=0)
        return torch.exp(-torch.sum(torch.xlogy(marginal_probs, marginal_probs), dim=-1)).sum()

    def forward(self, hidden_states: torch.Tensor, mask_time_indices: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, _ = hidden_states.shape
        logits = self.weight_proj(hidden_states).view(B * T * self.num_groups, -1)  # (B*T*G, V)
        if self.training:
            codevector_probs = F.gumbel_softmax(logits.float(), tau=self.temperature, hard=True).type_as(logits)
            soft_probs = torch.softmax(logits.view(B * T, self.num_groups, -1).float(), dim=-1)
            perplexity = self._compute_perplexity(soft_probs, mask_time_indices)
        else:
            codevector_probs = torch.zeros_like(logits).scatter_(-1, logits.argmax(dim=-1, keepdim=True), 1.0)
            perplexity = self._compute_perplexity(codevector_probs.view(B * T, self.num_groups, -1), mask_time_indices)
        codevector_probs = codevector_probs.view(B * T, self.num_groups * self.num_vars)
        # A (near) one-hot weighted sum picks one codevector per group: (B*T, G*V, d) -> (B*T, G, d).
        codevectors = (codevector_probs.unsqueeze(-1) * self.codevectors).view(B * T, self.num_groups, self.num_vars, -1).sum(-2)
        return codevectors.view(B, T, -1), perplexity


# --- models --------------------------------------------------------------------------------------------


class Wav2Vec2PreTrainedModel(PreTrainedModel):
    config_class = Wav2Vec2Config
    base_model_prefix = "wav2vec2"
    main_input_name = "input_values"
    supports_gradient_checkpointing = True
    _no_split_modules = ["Wav2Vec2EncoderLayer", "Wav2Vec2EncoderLayerStableLayerNorm"]

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, Wav2Vec2PositionalConvEmbedding):
            conv = module.conv
            std = 2 * math.sqrt(1 / (conv.kernel_size[0] * conv.in_channels))
            weight_v = conv.parametrizations.weight.original1
            weight_v.data.normal_(mean=0.0, std=std)
            conv.parametrizations.weight.original0.data.copy_(_norm_except_dim(weight_v.data, 2))
            conv.bias.data.zero_()
        elif isinstance(module, Wav2Vec2FeatureProjection):
            k = math.sqrt(1 / module.projection.in_features)
            nn.init.uniform_(module.projection.weight, a=-k, b=k)
            nn.init.uniform_(module.projection.bias, a=-k, b=k)
        elif isinstance(module, Wav2Vec2Model) and hasattr(module, "masked_spec_embed"):
            module.masked_spec_embed.data.uniform_()
        elif isinstance(module, AMSoftmaxLoss):
            module.weight.data.normal_()
        elif isinstance(module, Wav2Vec2GumbelVectorQuantizer):
            nn.init.uniform_(module.codevectors)
        elif isinstance(module, nn.Linear):
            # Heads may ask for another init by tagging the layer (set per layer, so that it also
            # holds when only that layer is missing from a checkpoint and initialised alone).
            scheme = getattr(module, "init_scheme", None)
            if scheme == "torch-default":
                module.reset_parameters()
            else:
                std = 1.0 if scheme == "standard-normal" else self.config.initializer_range
                module.weight.data.normal_(mean=0.0, std=std)
                if module.bias is not None:
                    module.bias.data.zero_()
        elif isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)
        elif isinstance(module, nn.Conv1d) and not hasattr(module, "parametrizations"):
            nn.init.kaiming_normal_(module.weight)
            if module.bias is not None:
                k = math.sqrt(module.groups / (module.in_channels * module.kernel_size[0]))
                nn.init.uniform_(module.bias, a=-k, b=k)

    def _rename_checkpoint_keys(self, state_dict: dict[str, torch.Tensor], expected: Any) -> dict[str, torch.Tensor]:
        """Old weight-norm names (``conv.weight_g``/``weight_v``) become the parametrization's."""
        renamed = {}
        for key, tensor in state_dict.items():
            if key.endswith("pos_conv_embed.conv.weight_g"):
                key = key[: -len("weight_g")] + "parametrizations.weight.original0"
            elif key.endswith("pos_conv_embed.conv.weight_v"):
                key = key[: -len("weight_v")] + "parametrizations.weight.original1"
            renamed[key] = tensor
        return super()._rename_checkpoint_keys(renamed, expected)

    def _get_feat_extract_output_lengths(self, input_lengths: torch.Tensor | int, add_adapter: bool | None = None) -> torch.Tensor | int:
        """Frames the conv stack (and the adapter) makes of ``input_lengths`` samples."""
        return conv_output_lengths(self.config, input_lengths, add_adapter)

    def _get_feature_vector_attention_mask(self, feature_vector_length: int, attention_mask: torch.Tensor, add_adapter: bool | None = None) -> torch.Tensor:
        """The sample-level mask (B, L) as a frame-level boolean mask (B, T): frames before each row's length."""
        output_lengths = self._get_feat_extract_output_lengths(attention_mask.sum(-1), add_adapter=add_adapter).to(torch.long)
        frames = torch.arange(feature_vector_length, device=attention_mask.device)
        return frames[None, :] < output_lengths[:, None]

    def freeze_feature_encoder(self) -> None:
        """Stop gradients through the conv feature encoder (fine-tuning usually does)."""
        self.wav2vec2.feature_extractor._freeze_parameters()

    def freeze_base_model(self) -> None:
        for param in self.wav2vec2.parameters():
            param.requires_grad = False

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None) -> None:
        for module in self.modules():
            if isinstance(module, Wav2Vec2Encoder):
                module.gradient_checkpointing = True

    def gradient_checkpointing_disable(self) -> None:
        for module in self.modules():
            if isinstance(module, Wav2Vec2Encoder):
                module.gradient_checkpointing = False


def _norm_except_dim(v: torch.Tensor, dim: int) -> torch.Tensor:
    """The L2 norm of ``v`` over every axis but ``dim``, kept broadcastable (weight norm's ``g``)."""
    axes = [d for d in range(v.dim()) if d != dim]
    return v.norm(dim=axes, keepdim=True)


class Wav2Vec2Model(Wav2Vec2PreTrainedModel):
    """The backbone: raw audio (B, L) to hidden states (B, T, C)."""

    def __init__(self, config: Wav2Vec2Config):
        super().__init__(config)
        self.feature_extractor = Wav2Vec2FeatureEncoder(config)
        self.feature_projection = Wav2Vec2FeatureProjection(config)
        if config.mask_time_prob > 0.0 or config.mask_feature_prob > 0.0:
            self.masked_spec_embed = nn.Parameter(torch.empty(config.hidden_size).uniform_())
        self.encoder = Wav2Vec2Encoder(config, stable=config.do_stable_layer_norm)
        self.adapter = Wav2Vec2Adapter(config) if config.add_adapter else None
        self.post_init()

    def freeze_feature_encoder(self) -> None:
        self.feature_extractor._freeze_parameters()

    def _mask_hidden_states(
        self, hidden_states: torch.Tensor, mask_time_indices: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """SpecAugment: given time indices always, random time/feature masks in training only."""
        if not getattr(self.config, "apply_spec_augment", True):
            return hidden_states
        B, T, C = hidden_states.shape
        if mask_time_indices is not None:
            if not hasattr(self, "masked_spec_embed"):
                raise ValueError(
                    "mask_time_indices were given but the model has no masked_spec_embed: it is only built when "
                    f"config.mask_time_prob > 0 or config.mask_feature_prob > 0 (got {self.config.mask_time_prob} and "
                    f"{self.config.mask_feature_prob}); set mask_time_prob, e.g. to 0.05, before building the model."
                )
            hidden_states = hidden_states.clone()
            hidden_states[mask_time_indices] = self.masked_spec_embed.to(hidden_states.dtype)
        elif self.config.mask_time_prob > 0 and self.training:
            indices = _compute_mask_indices(
                (B, T), self.config.mask_time_prob, self.config.mask_time_length, attention_mask, self.config.mask_time_min_masks
            )
            hidden_states = hidden_states.clone()
            hidden_states[torch.tensor(indices, device=hidden_states.device)] = self.masked_spec_embed.to(hidden_states.dtype)
        if self.config.mask_feature_prob > 0 and self.training:
            indices = _compute_mask_indices(
                (B, C), self.config.mask_feature_prob, self.config.mask_feature_length, min_masks=self.config.mask_feature_min_masks
            )
            feature_mask = torch.tensor(indices, device=hidden_states.device)[:, None].expand(-1, T, -1)
            hidden_states = hidden_states.masked_fill(feature_mask, 0.0)
        return hidden_states

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        mask_time_indices: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> Wav2Vec2BaseModelOutput | tuple:
        if input_values.dim() != 2:
            raise ValueError(
                f"input_values must be (batch, samples), got shape {tuple(input_values.shape)}; "
                "add a batch axis with input_values[None] or mix stereo down to mono."
            )
        output_attentions = bool(output_attentions if output_attentions is not None else self.config.output_attentions)
        output_hidden_states = bool(output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states)
        return_dict = return_dict if return_dict is not None else self.config.use_return_dict

        extract_features = self.feature_extractor(input_values).transpose(1, 2)  # (B, T, C_conv)
        if attention_mask is not None:
            attention_mask = self._get_feature_vector_attention_mask(extract_features.shape[1], attention_mask, add_adapter=False)
        hidden_states, extract_features = self.feature_projection(extract_features)
        hidden_states = self._mask_hidden_states(hidden_states, mask_time_indices, attention_mask)
        hidden_states, all_hidden, all_attentions = self.encoder(hidden_states, attention_mask, output_attentions, output_hidden_states)
        if self.adapter is not None:
            hidden_states = self.adapter(hidden_states)
        if not return_dict:
            return tuple(v for v in (hidden_states, extract_features, all_hidden, all_attentions) if v is not None)
        return Wav2Vec2BaseModelOutput(
            last_hidden_state=hidden_states, extract_features=extract_features, hidden_states=all_hidden, attentions=all_attentions
        )


class Wav2Vec2ForPreTraining(Wav2Vec2PreTrainedModel):
    """Self-supervised pre-training: predict the quantized conv features of masked frames.

    The backbone's context vectors (projected by ``project_hid``) must pick, among the quantized
    targets of their frame and ``num_negatives`` distractors from other masked frames (projected
    by ``project_q``), the right one by cosine similarity (the contrastive loss); the diversity
    loss keeps the codebook in use. Masks and negatives come from ``_compute_mask_indices`` and
    ``_sample_negative_indices``, usually in the data collator.
    """

    def __init__(self, config: Wav2Vec2Config):
        super().__init__(config)
        self.wav2vec2 = Wav2Vec2Model(config)
        self.dropout_features = nn.Dropout(config.feat_quantizer_dropout)
        self.quantizer = Wav2Vec2GumbelVectorQuantizer(config)
        self.project_hid = nn.Linear(config.hidden_size, config.proj_codevector_dim)
        self.project_q = nn.Linear(config.codevector_dim, config.proj_codevector_dim)
        for projection in (self.project_hid, self.project_q):
            projection.init_scheme = "torch-default"  # as in fairseq and Transformers
        self.post_init()

    def set_gumbel_temperature(self, temperature: float) -> None:
        """The Gumbel softmax temperature, usually decayed from 2 to 0.5 over training."""
        self.quantizer.temperature = temperature

    @staticmethod
    def compute_contrastive_logits(
        target_features: torch.Tensor,
        negative_features: torch.Tensor,
        predicted_features: torch.Tensor,
        temperature: float = 0.1,
    ) -> torch.Tensor:
        """Cosine similarity of the predictions with [positive, negatives], over the temperature.

        ``target_features`` (1, B, T, P), ``negative_features`` (K, B, T, P), ``predicted_features``
        (B, T, P); returns (K + 1, B, T), the positive first.
        """
        target_features = torch.cat([target_features, negative_features], dim=0)
        logits = torch.cosine_similarity(predicted_features.float(), target_features.float(), dim=-1).type_as(target_features)
        return logits / temperature

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        mask_time_indices: torch.Tensor | None = None,
        sampled_negative_indices: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> Wav2Vec2ForPreTrainingOutput | tuple:
        """``mask_time_indices`` (B, T) frames to mask and predict; ``sampled_negative_indices``
        (B, T, K) distractors into the flattened (B * T) frames. Both are needed for the losses."""
        return_dict = return_dict if return_dict is not None else self.config.use_return_dict
        if mask_time_indices is not None:
            mask_time_indices = torch.as_tensor(mask_time_indices, device=input_values.device).to(torch.bool)
        if sampled_negative_indices is not None and mask_time_indices is None:
            raise ValueError(
                "sampled_negative_indices were given without mask_time_indices: the contrastive loss is taken over "
                "the masked frames; pass the mask used to sample the negatives (see _compute_mask_indices)."
            )
        outputs = self.wav2vec2(input_values, attention_mask, mask_time_indices, output_attentions, output_hidden_states, return_dict=True)

        projected_states = self.project_hid(outputs.last_hidden_state)  # (B, T, P) context vectors, masked frames included
        extract_features = self.dropout_features(outputs.extract_features)  # (B, T, C_conv) targets: unmasked features
        quantized, codevector_perplexity = self.quantizer(extract_features, mask_time_indices=mask_time_indices)
        projected_quantized_states = self.project_q(quantized.to(self.project_q.weight.dtype))  # (B, T, P)

        loss = contrastive_loss = diversity_loss = None
        if sampled_negative_indices is not None:
            B, T, P = projected_quantized_states.shape
            negatives = projected_quantized_states.view(-1, P)[torch.as_tensor(sampled_negative_indices, device=input_values.device).long().view(-1)]
            negatives = negatives.view(B, T, -1, P).permute(2, 0, 1, 3)  # (K, B, T, P)
            logits = self.compute_contrastive_logits(
                projected_quantized_states[None], negatives, projected_states, self.config.contrastive_logits_temperature
            )  # (K + 1, B, T)
            # A distractor equal to the positive (a small codebook in use) must not count as wrong.
            negative_is_positive = (projected_quantized_states == negatives).all(-1)  # (K, B, T)
            if negative_is_positive.any():
                logits[1:][negative_is_positive] = float("-inf")
            # Rows (T, B) in Transformers' order, so that the summed loss adds up identically.
            logits = logits.transpose(0, 2).reshape(-1, logits.size(0))  # (T*B, K + 1)
            target = ((1 - mask_time_indices.long()) * -100).transpose(0, 1).flatten()  # class 0 where masked, else ignored
            contrastive_loss = F.cross_entropy(logits.float(), target, reduction="sum")
            num_codevectors = self.config.num_codevectors_per_group * self.config.num_codevector_groups
            diversity_loss = ((num_codevectors - codevector_perplexity) / num_codevectors) * mask_time_indices.sum()
            loss = contrastive_loss + self.config.diversity_loss_weight * diversity_loss

        output = Wav2Vec2ForPreTrainingOutput(
            loss=loss,
            projected_states=projected_states,
            projected_quantized_states=projected_quantized_states,
            codevector_perplexity=codevector_perplexity,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            contrastive_loss=contrastive_loss,
            diversity_loss=diversity_loss,
        )
        return output if return_dict else output.to_tuple()


class Wav2Vec2ForCTC(Wav2Vec2PreTrainedModel):
    """The backbone and a linear layer giving per-frame token logits, trained with CTC."""

    def __init__(self, config: Wav2Vec2Config):
        super().__init__(config)
        if config.vocab_size is None:
            raise ValueError(
                "Wav2Vec2ForCTC needs config.vocab_size (the number of CTC tokens), got None; "
                "set it to the size of the tokenizer's vocabulary."
            )
        self.wav2vec2 = Wav2Vec2Model(config)
        self.dropout = nn.Dropout(config.final_dropout)
        output_hidden_size = config.output_hidden_size if config.add_adapter else config.hidden_size
        self.lm_head = nn.Linear(output_hidden_size, config.vocab_size)
        self.post_init()

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> CausalLMOutput | tuple:
        """``labels``: (B, S) token ids, -100 where a row is shorter than S."""
        if labels is not None and labels.max() >= self.config.vocab_size:
            raise ValueError(f"CTC labels must be below vocab_size ({self.config.vocab_size}), got {labels.max().item()}.")
        return_dict = return_dict if return_dict is not None else self.config.use_return_dict
        outputs = self.wav2vec2(input_values, attention_mask, None, output_attentions, output_hidden_states, return_dict=True)
        logits = self.lm_head(self.dropout(outputs.last_hidden_state))  # (B, T, V)

        loss = None
        if labels is not None:
            if attention_mask is None:
                attention_mask = torch.ones_like(input_values, dtype=torch.long)
            input_lengths = self._get_feat_extract_output_lengths(attention_mask.sum(-1)).to(torch.long)
            labels_mask = labels >= 0  # -100 marks padding
            target_lengths = labels_mask.sum(-1)
            log_probs = F.log_softmax(logits, dim=-1, dtype=torch.float32).transpose(0, 1)  # (T, B, V)
            with torch.backends.cudnn.flags(enabled=False):  # cuDNN's CTC needs targets on CPU and other limits
                loss = F.ctc_loss(
                    log_probs,
                    labels.masked_select(labels_mask),
                    input_lengths,
                    target_lengths,
                    blank=self.config.pad_token_id,
                    reduction=self.config.ctc_loss_reduction,
                    zero_infinity=self.config.ctc_zero_infinity,
                )
        output = CausalLMOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions)
        return output if return_dict else output.to_tuple()


class _WeightedLayerSumMixin:
    """Classification heads read the last hidden state, or a softmax-weighted sum of all of them."""

    def _head_input(self, outputs: Wav2Vec2BaseModelOutput) -> torch.Tensor:
        if not self.config.use_weighted_layer_sum:
            return outputs.last_hidden_state
        hidden_states = torch.stack(outputs.hidden_states, dim=1)  # (B, layers + 1, T, C)
        weights = F.softmax(self.layer_weights, dim=-1)
        return (hidden_states * weights.view(-1, 1, 1)).sum(dim=1)

    def _run_backbone(self, input_values, attention_mask, output_attentions, output_hidden_states) -> Wav2Vec2BaseModelOutput:
        if self.config.use_weighted_layer_sum:
            output_hidden_states = True
        return self.wav2vec2(input_values, attention_mask, None, output_attentions, output_hidden_states, return_dict=True)


class Wav2Vec2ForSequenceClassification(_WeightedLayerSumMixin, Wav2Vec2PreTrainedModel):
    """Mean-pooled projection of the frames, then a linear classifier (keyword spotting, emotion...)."""

    def __init__(self, config: Wav2Vec2Config):
        super().__init__(config)
        if getattr(config, "add_adapter", False):
            raise ValueError("Sequence classification does not support the use of Wav2Vec2 adapters (config.add_adapter=True); set it to False.")
        self.wav2vec2 = Wav2Vec2Model(config)
        num_layers = config.num_hidden_layers + 1  # the encoder input and every layer
        if config.use_weighted_layer_sum:
            self.layer_weights = nn.Parameter(torch.ones(num_layers) / num_layers)
        self.projector = nn.Linear(config.hidden_size, config.classifier_proj_size)
        self.classifier = nn.Linear(config.classifier_proj_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> SequenceClassifierOutput | tuple:
        return_dict = return_dict if return_dict is not None else self.config.use_return_dict
        outputs = self._run_backbone(input_values, attention_mask, output_attentions, output_hidden_states)
        hidden_states = self.projector(self._head_input(outputs))  # (B, T, P)
        if attention_mask is None:
            pooled = hidden_states.mean(dim=1)
        else:
            padding_mask = self._get_feature_vector_attention_mask(hidden_states.shape[1], attention_mask)
            hidden_states = hidden_states.masked_fill(~padding_mask[..., None], 0.0)
            pooled = hidden_states.sum(dim=1) / padding_mask.sum(dim=1).view(-1, 1)
        logits = self.classifier(pooled)
        loss = None
        if labels is not None:
            loss = CrossEntropyLoss()(logits.view(-1, self.config.num_labels), labels.view(-1))
        output = SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions)
        return output if return_dict else output.to_tuple()


class Wav2Vec2ForAudioFrameClassification(_WeightedLayerSumMixin, Wav2Vec2PreTrainedModel):
    """A label per frame (speaker diarization); labels are one-hot (B, T, num_labels)."""

    def __init__(self, config: Wav2Vec2Config):
        super().__init__(config)
        if getattr(config, "add_adapter", False):
            raise ValueError("Audio frame classification does not support the use of Wav2Vec2 adapters (config.add_adapter=True); set it to False.")
        self.wav2vec2 = Wav2Vec2Model(config)
        num_layers = config.num_hidden_layers + 1
        if config.use_weighted_layer_sum:
            self.layer_weights = nn.Parameter(torch.ones(num_layers) / num_layers)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.num_labels = config.num_labels
        self.post_init()

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> TokenClassifierOutput | tuple:
        return_dict = return_dict if return_dict is not None else self.config.use_return_dict
        outputs = self._run_backbone(input_values, attention_mask, output_attentions, output_hidden_states)
        logits = self.classifier(self._head_input(outputs))  # (B, T, num_labels)
        loss = None
        if labels is not None:
            loss = CrossEntropyLoss()(logits.view(-1, self.num_labels), torch.argmax(labels.view(-1, self.num_labels), dim=1))
        output = TokenClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions)
        return output if return_dict else output.to_tuple()


class AMSoftmaxLoss(nn.Module):
    """Additive-margin softmax (speaker verification)."""

    def __init__(self, input_dim: int, num_labels: int, scale: float = 30.0, margin: float = 0.4):
        super().__init__()
        self.scale = scale
        self.margin = margin
        self.num_labels = num_labels
        self.weight = nn.Parameter(torch.randn(input_dim, num_labels), requires_grad=True)
        self.loss = nn.CrossEntropyLoss()

    def forward(self, hidden_states: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        labels = labels.flatten()
        cos_theta = F.normalize(hidden_states, dim=1) @ F.normalize(self.weight, dim=0)
        onehot = F.one_hot(labels, self.num_labels).bool()
        logits = self.scale * torch.where(onehot, cos_theta - self.margin, cos_theta)
        return self.loss(logits, labels)


class TDNNLayer(nn.Module):
    """A dilated 1-D convolution stored as a Linear (the checkpoint format), then ReLU."""

    def __init__(self, config: Wav2Vec2Config, layer_id: int = 0):
        super().__init__()
        self.in_conv_dim = config.tdnn_dim[layer_id - 1] if layer_id > 0 else config.tdnn_dim[layer_id]
        self.out_conv_dim = config.tdnn_dim[layer_id]
        self.kernel_size = config.tdnn_kernel[layer_id]
        self.dilation = config.tdnn_dilation[layer_id]
        self.kernel = nn.Linear(self.in_conv_dim * self.kernel_size, self.out_conv_dim)
        self.activation = nn.ReLU()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        weight = self.kernel.weight.view(self.out_conv_dim, self.kernel_size, self.in_conv_dim).transpose(1, 2)
        hidden_states = F.conv1d(hidden_states.transpose(1, 2), weight, self.kernel.bias, dilation=self.dilation)
        return self.activation(hidden_states.transpose(1, 2))


class Wav2Vec2ForXVector(_WeightedLayerSumMixin, Wav2Vec2PreTrainedModel):
    """TDNN layers, mean+std statistics pooling, an embedding, and AM-softmax (speaker verification)."""

    def __init__(self, config: Wav2Vec2Config):
        super().__init__(config)
        self.wav2vec2 = Wav2Vec2Model(config)
        num_layers = config.num_hidden_layers + 1
        if config.use_weighted_layer_sum:
            self.layer_weights = nn.Parameter(torch.ones(num_layers) / num_layers)
        self.projector = nn.Linear(config.hidden_size, config.tdnn_dim[0])
        self.tdnn = nn.ModuleList(TDNNLayer(config, i) for i in range(len(config.tdnn_dim)))
        self.feature_extractor = nn.Linear(config.tdnn_dim[-1] * 2, config.xvector_output_dim)
        self.classifier = nn.Linear(config.xvector_output_dim, config.xvector_output_dim)
        self.objective = AMSoftmaxLoss(config.xvector_output_dim, config.num_labels)
        self.post_init()

    def _get_tdnn_output_lengths(self, input_lengths: torch.Tensor) -> torch.Tensor:
        for kernel_size in self.config.tdnn_kernel:
            input_lengths = input_lengths - kernel_size + 1
        return input_lengths

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> XVectorOutput | tuple:
        return_dict = return_dict if return_dict is not None else self.config.use_return_dict
        outputs = self._run_backbone(input_values, attention_mask, output_attentions, output_hidden_states)
        hidden_states = self.projector(self._head_input(outputs))
        for tdnn_layer in self.tdnn:
            hidden_states = tdnn_layer(hidden_states)  # (B, T', tdnn_dim[-1])
        if attention_mask is None:
            mean_features, std_features = hidden_states.mean(dim=1), hidden_states.std(dim=1)
        else:
            lengths = self._get_tdnn_output_lengths(self._get_feat_extract_output_lengths(attention_mask.sum(dim=1)))
            mean_features = torch.stack([hidden_states[i, :n].mean(dim=0) for i, n in enumerate(lengths)])
            std_features = torch.stack([hidden_states[i, :n].std(dim=0) for i, n in enumerate(lengths)])
        embeddings = self.feature_extractor(torch.cat([mean_features, std_features], dim=-1))
        logits = self.classifier(embeddings)
        loss = self.objective(logits, labels) if labels is not None else None
        output = XVectorOutput(loss=loss, logits=logits, embeddings=embeddings, hidden_states=outputs.hidden_states, attentions=outputs.attentions)
        return output if return_dict else output.to_tuple()
