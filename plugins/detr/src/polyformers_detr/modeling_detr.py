"""DETR in PyTorch: backbone and position embeddings, the encoder-decoder, then the model and its heads.

Parameter names are part of the checkpoint format shared with Transformers and follow what its
``save_pretrained`` writes (4.x and 5.x write the same names): ``out_proj``, ``fc1``/``fc2`` in
the layers, ``backbone.conv_encoder.model.*`` for the ResNet, ``bbox_attention.q_linear`` and
``mask_head.lay1``..``out_lay`` in the segmentation head. Names that only Transformers 5 uses in
memory (``o_proj``, ``mlp.fc1``, ``mask_head.fpn_stages.0.fpn_adapter``...), the 4.x place of the
learned position embedding (``backbone.position_embedding``) and the other ResNet layout (timm vs
Transformers' own, see :mod:`.resnet`) are renamed on load.

Behaviour follows Transformers 5.x, including two choices kept for parity: with
``auxiliary_loss`` each decoder layer's output goes through the final LayerNorm before the next
layer, and for a Transformers-native ResNet backbone every backbone parameter is frozen (the
freezing rule tests for ``stage.1``, a name that layout never has). Layer drop is not applied.

Shapes: B batch, C channels, H x W feature map, S = H*W encoder positions, Q queries, D d_model,
nh heads, hd head size, K classes + 1 ("no object").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from polyformers.activations import ACT2FN
from polyformers.modeling_utils import PreTrainedModel

from .configuration_detr import DetrConfig
from .loss_detr import detr_loss
from .outputs_detr import DetrModelOutput, DetrObjectDetectionOutput, DetrSegmentationOutput
from .checkpoint_names import rename_checkpoint_keys
from .resnet import DetrFrozenBatchNorm2d, backbone_spec, build_resnet

# --- outputs: outputs_detr.py --------------------------------------------------------------------


# --- backbone and position embeddings ---------------------------------------------------------------


class DetrConvEncoder(nn.Module):
    """The ResNet (``self.model``) and, per returned feature map, the pixel mask resized to it."""

    def __init__(self, config: DetrConfig) -> None:
        super().__init__()
        spec = backbone_spec(config)
        self.layout = spec.layout
        self.model = build_resnet(spec)
        self.intermediate_channel_sizes = spec.channels
        # Transformers freezes the stem and the first stage. Its test for the native layout looks
        # for "stage.1".."stage.3", which no parameter name contains: there the whole backbone is
        # frozen. Kept so that training matches.
        trainable = ("layer2", "layer3", "layer4") if spec.layout == "timm" else ("stage.1", "stage.2", "stage.3")
        for name, parameter in self.model.named_parameters():
            if not any(t in name for t in trainable):
                parameter.requires_grad_(False)

    def forward(self, pixel_values: torch.Tensor, pixel_mask: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        out = []
        for feature_map in self.model(pixel_values):  # each (B, C_i, H_i, W_i)
            mask = F.interpolate(pixel_mask[None].float(), size=feature_map.shape[-2:]).to(torch.bool)[0]  # (B, H_i, W_i)
            out.append((feature_map, mask))
        return out


class DetrConvModel(nn.Module):
    """Holds the conv encoder as ``conv_encoder``: the checkpoint names are ``backbone.conv_encoder.model.*``.

    (In Transformers 4 this module also held the position embedding; it now sits on the model.)
    """

    def __init__(self, config: DetrConfig) -> None:
        super().__init__()
        self.conv_encoder = DetrConvEncoder(config)

    @property
    def intermediate_channel_sizes(self) -> list[int]:
        return self.conv_encoder.intermediate_channel_sizes

    def forward(self, pixel_values: torch.Tensor, pixel_mask: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return self.conv_encoder(pixel_values, pixel_mask)


class DetrSinePositionEmbedding(nn.Module):
    """The 2D sine/cosine embedding of the DETR paper: D/2 channels for y, then D/2 for x, from the unpadded extent."""

    def __init__(self, num_position_features: int = 64, temperature: int = 10000, normalize: bool = False, scale: float | None = None) -> None:
        super().__init__()
        if scale is not None and not normalize:
            raise ValueError("DetrSinePositionEmbedding: scale is only used with normalize=True; pass normalize=True or no scale.")
        self.num_position_features = num_position_features
        self.temperature = temperature
        self.normalize = normalize
        self.scale = 2 * math.pi if scale is None else scale

    def forward(self, shape: torch.Size, device: torch.device, dtype: torch.dtype, mask: torch.Tensor | None = None) -> torch.Tensor:
        batch_size, _, height, width = shape
        if mask is None:
            y_embed = torch.arange(1, height + 1, dtype=dtype, device=device)[None, :, None].expand(batch_size, height, width)
            x_embed = torch.arange(1, width + 1, dtype=dtype, device=device)[None, None, :].expand(batch_size, height, width)
        else:  # positions count only real pixels, so padding does not shift them
            y_embed = mask.to(dtype).cumsum(1)
            x_embed = mask.to(dtype).cumsum(2)
        if self.normalize:
            eps = 1e-6
            y_embed = y_embed / (y_embed[:, -1:, :] + eps) * self.scale
            x_embed = x_embed / (x_embed[:, :, -1:] + eps) * self.scale
        dim_t = torch.arange(self.num_position_features, dtype=torch.int64, device=device).to(dtype)
        dim_t = self.temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / self.num_position_features)
        pos_x = x_embed[:, :, :, None] / dim_t  # (B, H, W, D/2)
        pos_y = y_embed[:, :, :, None] / dim_t
        pos_x = torch.stack((pos_x[:, :, :, 0::2].sin(), pos_x[:, :, :, 1::2].cos()), dim=4).flatten(3)
        pos_y = torch.stack((pos_y[:, :, :, 0::2].sin(), pos_y[:, :, :, 1::2].cos()), dim=4).flatten(3)
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)  # (B, D, H, W)


class DetrLearnedPositionEmbedding(nn.Module):
    """Learned row and column embeddings (feature maps up to 50 x 50): x channels first, then y."""

    def __init__(self, embedding_dim: int = 256) -> None:
        super().__init__()
        self.row_embeddings = nn.Embedding(50, embedding_dim)
        self.column_embeddings = nn.Embedding(50, embedding_dim)

    def forward(self, shape: torch.Size, device: torch.device, dtype: torch.dtype, mask: torch.Tensor | None = None) -> torch.Tensor:
        height, width = shape[-2:]
        if height > 50 or width > 50:
            raise ValueError(f"Learned DETR position embeddings cover feature maps up to 50 x 50, got {height} x {width}; use smaller images.")
        x_emb = self.column_embeddings(torch.arange(width, device=device))  # (W, D/2)
        y_emb = self.row_embeddings(torch.arange(height, device=device))  # (H, D/2)
        pos = torch.cat([x_emb[None].expand(height, -1, -1), y_emb[:, None].expand(-1, width, -1)], dim=-1)  # (H, W, D)
        return pos.permute(2, 0, 1)[None].expand(shape[0], -1, -1, -1).to(dtype)


def build_position_embedding(config: DetrConfig) -> nn.Module:
    if config.position_embedding_type == "sine":
        return DetrSinePositionEmbedding(config.d_model // 2, normalize=True)
    if config.position_embedding_type == "learned":
        return DetrLearnedPositionEmbedding(config.d_model // 2)
    raise ValueError(f"position_embedding_type must be 'sine' or 'learned', got {config.position_embedding_type!r}.")


# --- the Transformer --------------------------------------------------------------------------------


def _additive_mask(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """(B, S) 1 = attend / 0 = padding -> (B, 1, 1, S): 0 to keep, dtype-min to drop."""
    if mask is None:
        return None
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask.bool(), torch.finfo(dtype).min)[:, None, None, :]


class DetrAttention(nn.Module):
    """Multi-head attention where position embeddings are added to queries and keys, never to values."""
    _inference_shared_input = (("q_proj", "k_proj"),)  # self-attention calls them on one input (polyformers.inference)

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"d_model must be divisible by the number of heads: got d_model={embed_dim} and {num_heads} heads.")
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.scaling = self.head_dim**-0.5
        self.dropout = dropout
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_embeddings: torch.Tensor | None = None,
        key_value_states: torch.Tensor | None = None,
        key_position_embeddings: torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Self-attention, or cross-attention to ``key_value_states`` (keys get ``key_position_embeddings``)."""
        batch_size, q_len, _ = hidden_states.shape
        query_input = hidden_states if position_embeddings is None else hidden_states + position_embeddings
        if key_value_states is None:  # self-attention: keys are computed from the queries' input
            key_value_states, key_input = hidden_states, query_input
        else:
            key_input = key_value_states if key_position_embeddings is None else key_value_states + key_position_embeddings

        def heads(x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, nh, T, hd)
            return x.view(batch_size, -1, self.num_heads, self.head_dim).transpose(1, 2)

        query, key, value = heads(self.q_proj(query_input)), heads(self.k_proj(key_input)), heads(self.v_proj(key_value_states))
        dropout = self.dropout if self.training else 0.0
        if output_attentions:
            weights = torch.matmul(query, key.transpose(2, 3)) * self.scaling  # (B, nh, T, S)
            if attention_mask is not None:
                weights = weights + attention_mask
            weights = weights.softmax(-1)
            attn_output = torch.matmul(F.dropout(weights, p=dropout, training=self.training), value)
        else:
            weights = None
            attn_output = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=self.scaling)
        attn_output = attn_output.transpose(1, 2).reshape(batch_size, q_len, -1)
        return self.out_proj(attn_output), weights


class DetrEncoderLayer(nn.Module):
    _inference_fusions = (("fc1", "activation_fn"),)  # for optimize_for_inference (polyformers.inference)

    def __init__(self, config: DetrConfig) -> None:
        super().__init__()
        d_model = config.d_model
        self.self_attn = DetrAttention(d_model, config.encoder_attention_heads, config.attention_dropout)
        self.self_attn_layer_norm = nn.LayerNorm(d_model)
        self.activation_fn = ACT2FN[config.activation_function]
        self.dropout, self.activation_dropout = config.dropout, config.activation_dropout
        self.fc1 = nn.Linear(d_model, config.encoder_ffn_dim)
        self.fc2 = nn.Linear(config.encoder_ffn_dim, d_model)
        self.final_layer_norm = nn.LayerNorm(d_model)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None, position_embeddings: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        residual = hidden_states
        hidden_states, weights = self.self_attn(hidden_states, attention_mask, position_embeddings, output_attentions=output_attentions)
        hidden_states = self.self_attn_layer_norm(residual + F.dropout(hidden_states, p=self.dropout, training=self.training))
        residual = hidden_states
        hidden_states = F.dropout(self.activation_fn(self.fc1(hidden_states)), p=self.activation_dropout, training=self.training)
        hidden_states = F.dropout(self.fc2(hidden_states), p=self.dropout, training=self.training)
        hidden_states = self.final_layer_norm(residual + hidden_states)
        if self.training and not torch.isfinite(hidden_states).all():  # half precision overflow
            clamp = torch.finfo(hidden_states.dtype).max - 1000
            hidden_states = hidden_states.clamp(min=-clamp, max=clamp)
        return hidden_states, weights


class DetrDecoderLayer(nn.Module):
    _inference_fusions = (("fc1", "activation_fn"),)  # for optimize_for_inference (polyformers.inference)

    def __init__(self, config: DetrConfig) -> None:
        super().__init__()
        d_model = config.d_model
        self.self_attn = DetrAttention(d_model, config.decoder_attention_heads, config.attention_dropout)
        self.self_attn_layer_norm = nn.LayerNorm(d_model)
        self.encoder_attn = DetrAttention(d_model, config.decoder_attention_heads, config.attention_dropout)
        self.encoder_attn_layer_norm = nn.LayerNorm(d_model)
        self.activation_fn = ACT2FN[config.activation_function]
        self.dropout, self.activation_dropout = config.dropout, config.activation_dropout
        self.fc1 = nn.Linear(d_model, config.decoder_ffn_dim)
        self.fc2 = nn.Linear(config.decoder_ffn_dim, d_model)
        self.final_layer_norm = nn.LayerNorm(d_model)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        spatial_position_embeddings: torch.Tensor,
        query_position_embeddings: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor | None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        residual = hidden_states
        hidden_states, self_weights = self.self_attn(hidden_states, attention_mask, query_position_embeddings, output_attentions=output_attentions)
        hidden_states = self.self_attn_layer_norm(residual + F.dropout(hidden_states, p=self.dropout, training=self.training))
        residual = hidden_states
        hidden_states, cross_weights = self.encoder_attn(
            hidden_states, encoder_attention_mask, query_position_embeddings,
            key_value_states=encoder_hidden_states, key_position_embeddings=spatial_position_embeddings, output_attentions=output_attentions,
        )
        hidden_states = self.encoder_attn_layer_norm(residual + F.dropout(hidden_states, p=self.dropout, training=self.training))
        residual = hidden_states
        hidden_states = F.dropout(self.activation_fn(self.fc1(hidden_states)), p=self.activation_dropout, training=self.training)
        hidden_states = F.dropout(self.fc2(hidden_states), p=self.dropout, training=self.training)
        return self.final_layer_norm(residual + hidden_states), self_weights, cross_weights


class DetrEncoder(nn.Module):
    def __init__(self, config: DetrConfig) -> None:
        super().__init__()
        self.dropout = config.dropout
        self.layers = nn.ModuleList(DetrEncoderLayer(config) for _ in range(config.encoder_layers))

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor | None,
        position_embeddings: torch.Tensor,
        output_attentions: bool,
        output_hidden_states: bool,
    ) -> tuple:
        hidden_states = F.dropout(inputs_embeds, p=self.dropout, training=self.training)  # (B, S, D)
        mask = _additive_mask(attention_mask, hidden_states.dtype)
        all_hidden, all_attentions = [], []
        for layer in self.layers:
            if output_hidden_states:
                all_hidden.append(hidden_states)
            hidden_states, weights = layer(hidden_states, mask, position_embeddings, output_attentions)
            if output_attentions:
                all_attentions.append(weights)
        if output_hidden_states:
            all_hidden.append(hidden_states)
        return hidden_states, tuple(all_hidden) if output_hidden_states else None, tuple(all_attentions) if output_attentions else None


class DetrDecoder(nn.Module):
    def __init__(self, config: DetrConfig) -> None:
        super().__init__()
        self.auxiliary_loss = config.auxiliary_loss
        self.layers = nn.ModuleList(DetrDecoderLayer(config) for _ in range(config.decoder_layers))
        self.layernorm = nn.LayerNorm(config.d_model)  # DETR normalises the decoder's output

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor | None,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor | None,
        spatial_position_embeddings: torch.Tensor,
        query_position_embeddings: torch.Tensor,
        output_attentions: bool,
        output_hidden_states: bool,
    ) -> tuple:
        hidden_states = inputs_embeds  # (B, Q, D)
        self_mask = _additive_mask(attention_mask, hidden_states.dtype)
        cross_mask = _additive_mask(encoder_attention_mask, hidden_states.dtype)
        all_hidden, all_self, all_cross, intermediate = [inputs_embeds], [], [], []
        for i, layer in enumerate(self.layers):
            hidden_states, self_weights, cross_weights = layer(
                hidden_states, self_mask, spatial_position_embeddings, query_position_embeddings, encoder_hidden_states, cross_mask, output_attentions
            )
            if i < len(self.layers) - 1:  # hidden states: each layer's own output, the last one normalised
                all_hidden.append(hidden_states)
            if self.auxiliary_loss:  # as in Transformers, the normalised output also feeds the next layer
                hidden_states = self.layernorm(hidden_states)
                intermediate.append(hidden_states)
            if output_attentions:
                all_self.append(self_weights)
                all_cross.append(cross_weights)
        hidden_states = self.layernorm(hidden_states)
        if output_hidden_states:
            all_hidden.append(hidden_states)
        return (
            hidden_states,
            tuple(all_hidden) if output_hidden_states else None,
            tuple(all_self) if output_attentions else None,
            tuple(all_cross) if output_attentions else None,
            torch.stack(intermediate) if self.auxiliary_loss else None,  # (L, B, Q, D)
        )


# --- segmentation head ------------------------------------------------------------------------------


class DetrMHAttentionMap(nn.Module):
    """Attention of each query over the encoder's feature map, per head, without values: (B, Q, nh, H, W).

    The softmax runs over heads and positions together, as in the original DETR.
    """

    def __init__(self, query_dim: int, hidden_dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.dropout = nn.Dropout(dropout)
        self.q_linear = nn.Linear(query_dim, hidden_dim)
        self.k_linear = nn.Linear(query_dim, hidden_dim)
        self.normalize_fact = float(hidden_dim / num_heads) ** -0.5

    def forward(self, q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``q`` (B, Q, D) decoder output, ``k`` (B, D, H, W) encoder memory, ``mask`` additive (B, 1, 1, H, W)."""
        head_dim = self.hidden_dim // self.num_heads
        q = self.q_linear(q).view(q.shape[0], q.shape[1], self.num_heads, head_dim)  # (B, Q, nh, hd)
        k = F.conv2d(k, self.k_linear.weight[:, :, None, None], self.k_linear.bias)
        k = k.view(k.shape[0], self.num_heads, head_dim, k.shape[-2], k.shape[-1])  # (B, nh, hd, H, W)
        weights = torch.einsum("bqnc,bnchw->bqnhw", q * self.normalize_fact, k)
        if mask is not None:
            weights = weights + mask
        weights = weights.flatten(2).softmax(-1).view(weights.shape)
        return self.dropout(weights)


class DetrMaskHeadSmallConv(nn.Module):
    """Per-query mask logits: encoder features + attention maps, upsampled through three FPN levels.

    ``lay1``..``lay5``, ``gn1``..``gn5``, ``adapter1``..``adapter3`` and ``out_lay`` are the
    checkpoint names (Transformers 5 calls them ``conv1.conv``, ``fpn_stages.0.fpn_adapter``...).
    """

    def __init__(self, dim: int, fpn_dims: list[int], context_dim: int, activation_function: str = "relu") -> None:
        super().__init__()
        if dim % 8:
            raise ValueError(
                f"The DETR mask head takes d_model + encoder_attention_heads channels, which must be divisible by 8 "
                f"(GroupNorm with 8 groups); got {dim}."
            )
        inter = [dim, context_dim // 2, context_dim // 4, context_dim // 8, context_dim // 16]
        self.lay1, self.gn1 = nn.Conv2d(dim, dim, 3, padding=1), nn.GroupNorm(min(8, dim), dim)
        for n in range(2, 6):  # lay2..lay5 halve the channels at each step
            self.add_module(f"lay{n}", nn.Conv2d(inter[n - 2], inter[n - 1], 3, padding=1))
            self.add_module(f"gn{n}", nn.GroupNorm(min(8, inter[n - 1]), inter[n - 1]))
        self.out_lay = nn.Conv2d(inter[4], 1, 3, padding=1)
        self.adapter1 = nn.Conv2d(fpn_dims[0], inter[1], 1)
        self.adapter2 = nn.Conv2d(fpn_dims[1], inter[2], 1)
        self.adapter3 = nn.Conv2d(fpn_dims[2], inter[3], 1)
        self.activation = ACT2FN[activation_function]

    def _block(self, n: int, x: torch.Tensor) -> torch.Tensor:
        return self.activation(getattr(self, f"gn{n}")(getattr(self, f"lay{n}")(x)))

    def forward(self, x: torch.Tensor, bbox_mask: torch.Tensor, fpns: list[torch.Tensor]) -> torch.Tensor:
        """``x`` (B, D, H, W), ``bbox_mask`` (B, Q, nh, H, W), ``fpns`` backbone maps, coarse to fine -> (B*Q, 1, H', W')."""
        num_queries = bbox_mask.shape[1]

        def per_query(t: torch.Tensor) -> torch.Tensor:  # (B, C, h, w) -> (B*Q, C, h, w)
            return t.unsqueeze(1).expand(-1, num_queries, -1, -1, -1).flatten(0, 1)

        x = torch.cat([per_query(x), bbox_mask.flatten(0, 1)], dim=1)
        x = self._block(2, self._block(1, x))
        for n, fpn in enumerate(fpns, start=1):
            fpn = per_query(getattr(self, f"adapter{n}")(fpn))  # the 1x1 adapter commutes with the expansion
            x = self._block(n + 2, fpn + F.interpolate(x, size=fpn.shape[-2:], mode="nearest"))
        return self.out_lay(x)


# --- pre-trained model base ---------------------------------------------------------------------------

class DetrPreTrainedModel(PreTrainedModel):
    config_class = DetrConfig
    base_model_prefix = "model"
    main_input_name = "pixel_values"
    _keys_to_ignore_on_load_unexpected = [r"num_batches_tracked$"]

    def _init_weights(self, module: nn.Module) -> None:
        # ``apply`` visits children before their parent, so the special cases below (mask head,
        # attention map, backbone) override the generic initialisation of their own layers.
        std, xavier_std = self.config.init_std, self.config.init_xavier_std
        if isinstance(module, DetrMHAttentionMap):
            nn.init.zeros_(module.k_linear.bias)
            nn.init.zeros_(module.q_linear.bias)
            nn.init.xavier_uniform_(module.k_linear.weight, gain=xavier_std)
            nn.init.xavier_uniform_(module.q_linear.weight, gain=xavier_std)
        elif isinstance(module, DetrMaskHeadSmallConv):
            for conv in module.modules():
                if isinstance(conv, nn.Conv2d):
                    nn.init.kaiming_uniform_(conv.weight, a=1)
                    nn.init.zeros_(conv.bias)
        elif isinstance(module, DetrLearnedPositionEmbedding):
            nn.init.uniform_(module.row_embeddings.weight)
            nn.init.uniform_(module.column_embeddings.weight)
        elif isinstance(module, DetrConvEncoder):
            for conv in module.modules():  # ResNet convolutions (no bias) for training from scratch
                if isinstance(conv, nn.Conv2d):
                    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def _rename_checkpoint_keys(self, state_dict: dict[str, torch.Tensor], expected: Any) -> dict[str, torch.Tensor]:
        """Transformers 5 / 4 spellings, the other ResNet layout, and checkpoints of another DETR class."""
        return rename_checkpoint_keys(state_dict, _detr_class_name(self), self._detr_model().backbone.conv_encoder.layout)

    def _detr_model(self) -> "DetrModel":
        return self if isinstance(self, DetrModel) else self.model if isinstance(self, DetrForObjectDetection) else self.detr.model


def _detr_class_name(model: nn.Module) -> str:
    for name in ("DetrForSegmentation", "DetrForObjectDetection", "DetrModel"):
        if isinstance(model, globals()[name]):
            return name
    raise TypeError(f"{type(model).__name__} is not a DETR model class.")


# --- models ------------------------------------------------------------------------------------------------


@dataclass
class _Features:
    """What the segmentation head needs besides the model's output."""

    backbone: list[tuple[torch.Tensor, torch.Tensor]]
    projected: torch.Tensor  # (B, D, H, W)
    mask: torch.Tensor  # (B, H, W) bool, True on real pixels


class DetrModel(DetrPreTrainedModel):
    """Backbone, 1x1 projection to d_model, position embeddings, encoder, and decoder over ``num_queries`` learned queries."""

    def __init__(self, config: DetrConfig) -> None:
        super().__init__(config)
        self.backbone = DetrConvModel(config)
        self.position_embedding = build_position_embedding(config)
        self.query_position_embeddings = nn.Embedding(config.num_queries, config.d_model)
        self.input_projection = nn.Conv2d(self.backbone.intermediate_channel_sizes[-1], config.d_model, kernel_size=1)
        self.encoder = DetrEncoder(config)
        self.decoder = DetrDecoder(config)
        self.post_init()

    def freeze_backbone(self) -> None:
        for parameter in self.backbone.conv_encoder.model.parameters():
            parameter.requires_grad_(False)

    def unfreeze_backbone(self) -> None:
        for parameter in self.backbone.conv_encoder.model.parameters():
            parameter.requires_grad_(True)

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        pixel_mask: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> DetrModelOutput | tuple:
        """``pixel_values`` (B, 3, H, W); ``pixel_mask`` (B, H, W), 1 on real pixels, 0 on padding (default: all real).

        ``inputs_embeds`` (B, S, D) bypasses the backbone (the feature map is taken as square);
        ``decoder_inputs_embeds`` (B, Q, D) replaces the all-zero initial queries.
        """
        outputs, _ = self._forward_with_features(
            pixel_values, pixel_mask, decoder_attention_mask, encoder_outputs, inputs_embeds, decoder_inputs_embeds,
            output_attentions, output_hidden_states,
        )
        return outputs if _return_dict(self.config, return_dict) else outputs.to_tuple()

    def _forward_with_features(
        self,
        pixel_values: torch.Tensor | None,
        pixel_mask: torch.Tensor | None,
        decoder_attention_mask: torch.Tensor | None,
        encoder_outputs: Any,
        inputs_embeds: torch.Tensor | None,
        decoder_inputs_embeds: torch.Tensor | None,
        output_attentions: bool | None,
        output_hidden_states: bool | None,
    ) -> tuple[DetrModelOutput, _Features | None]:
        config = self.config
        output_attentions = output_attentions if output_attentions is not None else getattr(config, "output_attentions", False)
        output_hidden_states = output_hidden_states if output_hidden_states is not None else getattr(config, "output_hidden_states", False)
        features = None
        if inputs_embeds is None:
            if pixel_values is None:
                raise ValueError("DetrModel needs pixel_values (B, C, H, W), or inputs_embeds (B, S, d_model) to bypass the backbone.")
            if pixel_values.dim() != 4:
                raise ValueError(f"pixel_values must be (batch, channels, height, width), got shape {tuple(pixel_values.shape)}.")
            batch_size, _, height, width = pixel_values.shape
            device, dtype = pixel_values.device, pixel_values.dtype
            if pixel_mask is None:
                pixel_mask = torch.ones((batch_size, height, width), device=device)
            backbone_features = self.backbone(pixel_values, pixel_mask)
            feature_map, mask = backbone_features[-1]  # (B, C, H, W), (B, H, W)
            projected = self.input_projection(feature_map)  # (B, D, H, W)
            flat_features = projected.flatten(2).transpose(1, 2)  # (B, S, D)
            spatial_pos = self.position_embedding(feature_map.shape, device, dtype, mask).flatten(2).transpose(1, 2)
            flat_mask = mask.flatten(1)
            features = _Features(backbone_features, projected, mask)
        else:
            batch_size, seq_len = inputs_embeds.shape[:2]
            device = inputs_embeds.device
            side = int(seq_len**0.5)  # as Transformers: the feature map is taken to be square
            flat_features = inputs_embeds
            shape = torch.Size([batch_size, config.d_model, side, side])
            spatial_pos = self.position_embedding(shape, device, inputs_embeds.dtype).flatten(2).transpose(1, 2)
            if pixel_mask is not None:
                flat_mask = F.interpolate(pixel_mask[None].float(), size=(side, side)).to(torch.bool)[0].flatten(1)
            else:
                flat_mask = torch.ones((batch_size, seq_len), device=device, dtype=torch.long)

        if encoder_outputs is None:
            encoder_last, encoder_hidden, encoder_attentions = self.encoder(
                flat_features, flat_mask, spatial_pos, output_attentions, output_hidden_states
            )
        else:
            encoder_last = encoder_outputs[0]
            encoder_hidden = encoder_outputs[1] if len(encoder_outputs) > 1 else None
            encoder_attentions = encoder_outputs[2] if len(encoder_outputs) > 2 else None

        query_pos = self.query_position_embeddings.weight.unsqueeze(0).repeat(batch_size, 1, 1)  # (B, Q, D)
        queries = decoder_inputs_embeds if decoder_inputs_embeds is not None else torch.zeros_like(query_pos)
        last, hidden, self_attentions, cross_attentions, intermediate = self.decoder(
            queries, decoder_attention_mask, encoder_last, flat_mask, spatial_pos, query_pos, output_attentions, output_hidden_states
        )
        outputs = DetrModelOutput(
            last_hidden_state=last,
            decoder_hidden_states=hidden,
            decoder_attentions=self_attentions,
            cross_attentions=cross_attentions,
            encoder_last_hidden_state=encoder_last,
            encoder_hidden_states=encoder_hidden,
            encoder_attentions=encoder_attentions,
            intermediate_hidden_states=intermediate,
        )
        return outputs, features


class DetrMLPPredictionHead(nn.Module):
    """A small MLP (ReLU between layers): the box head, ``layers.0``..``layers.{n-1}``."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        self.num_layers = num_layers
        sizes = [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in zip([input_dim] + sizes, sizes + [output_dim]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < self.num_layers - 1 else layer(x)
        return x


class DetrForObjectDetection(DetrPreTrainedModel):
    """DETR with a class head (``num_labels`` + "no object") and a box head (sigmoid cx, cy, w, h)."""

    def __init__(self, config: DetrConfig) -> None:
        super().__init__(config)
        self.model = DetrModel(config)
        self.class_labels_classifier = nn.Linear(config.d_model, config.num_labels + 1)
        self.bbox_predictor = DetrMLPPredictionHead(config.d_model, config.d_model, 4, num_layers=3)
        self.post_init()

    def _heads(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.class_labels_classifier(hidden), self.bbox_predictor(hidden).sigmoid()

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        pixel_mask: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        labels: list[dict[str, torch.Tensor]] | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> DetrObjectDetectionOutput | tuple:
        """``labels``: one dict per image with ``class_labels`` (N,) and ``boxes`` (N, 4), normalised cx, cy, w, h."""
        outputs, _ = self.model._forward_with_features(
            pixel_values, pixel_mask, decoder_attention_mask, encoder_outputs, inputs_embeds, decoder_inputs_embeds,
            output_attentions, output_hidden_states,
        )
        logits, pred_boxes = self._heads(outputs.last_hidden_state)
        loss = loss_dict = auxiliary_outputs = None
        if labels is not None:
            outputs_class = outputs_coord = None
            if self.config.auxiliary_loss:
                outputs_class, outputs_coord = self._heads(outputs.intermediate_hidden_states)
            loss, loss_dict, auxiliary_outputs = detr_loss(self.config, logits, pred_boxes, labels, None, outputs_class, outputs_coord)
        result = DetrObjectDetectionOutput(
            loss=loss,
            loss_dict=loss_dict,
            logits=logits,
            pred_boxes=pred_boxes,
            auxiliary_outputs=auxiliary_outputs,
            **_decoder_encoder_fields(outputs),
        )
        return result if _return_dict(self.config, return_dict) else result.to_tuple()


class DetrForSegmentation(DetrPreTrainedModel):
    """DETR detection (``self.detr``) plus a mask head: attention maps of each query, refined with backbone features."""

    def __init__(self, config: DetrConfig) -> None:
        super().__init__(config)
        self.detr = DetrForObjectDetection(config)
        hidden_size, num_heads = config.d_model, config.encoder_attention_heads
        channels = self.detr.model.backbone.intermediate_channel_sizes
        if len(channels) < 4:
            raise ValueError(
                f"DetrForSegmentation needs 4 backbone feature maps (FPN levels + the last one), got {len(channels)}: "
                f"set the backbone's out_features to ['stage1', 'stage2', 'stage3', 'stage4']."
            )
        self.mask_head = DetrMaskHeadSmallConv(hidden_size + num_heads, channels[::-1][-3:], hidden_size, config.activation_function)
        self.bbox_attention = DetrMHAttentionMap(hidden_size, hidden_size, num_heads, dropout=0.0)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        pixel_mask: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        labels: list[dict[str, torch.Tensor]] | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> DetrSegmentationOutput | tuple:
        """``labels`` also need ``masks`` (N, H, W) per image. ``inputs_embeds`` cannot be used: masks need the backbone."""
        if inputs_embeds is not None or pixel_values is None:
            raise ValueError(
                "DetrForSegmentation needs pixel_values: its mask head uses the backbone's feature maps, "
                "so inputs_embeds cannot replace them."
            )
        outputs, features = self.detr.model._forward_with_features(
            pixel_values, pixel_mask, decoder_attention_mask, encoder_outputs, None, decoder_inputs_embeds, output_attentions, output_hidden_states
        )
        sequence_output = outputs.last_hidden_state  # (B, Q, D)
        logits, pred_boxes = self.detr._heads(sequence_output)

        batch_size = pixel_values.shape[0]
        height, width = features.projected.shape[-2:]
        memory = outputs.encoder_last_hidden_state.transpose(1, 2).reshape(batch_size, self.config.d_model, height, width)
        attention_mask = torch.zeros(features.mask.shape, dtype=memory.dtype, device=memory.device)
        attention_mask = attention_mask.masked_fill(~features.mask, torch.finfo(memory.dtype).min)[:, None, None]  # (B, 1, 1, H, W)
        bbox_mask = self.bbox_attention(sequence_output, memory, mask=attention_mask)  # (B, Q, nh, H, W)
        fpns = [features.backbone[2][0], features.backbone[1][0], features.backbone[0][0]]  # coarse to fine
        seg_masks = self.mask_head(features.projected, bbox_mask, fpns)
        pred_masks = seg_masks.view(batch_size, self.config.num_queries, seg_masks.shape[-2], seg_masks.shape[-1])

        loss = loss_dict = auxiliary_outputs = None
        if labels is not None:
            outputs_class = outputs_coord = None
            if self.config.auxiliary_loss:
                outputs_class, outputs_coord = self.detr._heads(outputs.intermediate_hidden_states)
            loss, loss_dict, auxiliary_outputs = detr_loss(self.config, logits, pred_boxes, labels, pred_masks, outputs_class, outputs_coord)
        result = DetrSegmentationOutput(
            loss=loss,
            loss_dict=loss_dict,
            logits=logits,
            pred_boxes=pred_boxes,
            pred_masks=pred_masks,
            auxiliary_outputs=auxiliary_outputs,
            **_decoder_encoder_fields(outputs),
        )
        return result if _return_dict(self.config, return_dict) else result.to_tuple()


def _decoder_encoder_fields(outputs: DetrModelOutput) -> dict[str, Any]:
    return {
        "last_hidden_state": outputs.last_hidden_state,
        "decoder_hidden_states": outputs.decoder_hidden_states,
        "decoder_attentions": outputs.decoder_attentions,
        "cross_attentions": outputs.cross_attentions,
        "encoder_last_hidden_state": outputs.encoder_last_hidden_state,
        "encoder_hidden_states": outputs.encoder_hidden_states,
        "encoder_attentions": outputs.encoder_attentions,
    }


def _return_dict(config: DetrConfig, return_dict: bool | None) -> bool:
    return return_dict if return_dict is not None else getattr(config, "use_return_dict", getattr(config, "return_dict", True))


__all__ = ["DetrForObjectDetection", "DetrForSegmentation", "DetrModel", "DetrPreTrainedModel", "DetrFrozenBatchNorm2d"]
