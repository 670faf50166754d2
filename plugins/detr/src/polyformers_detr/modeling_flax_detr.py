"""DETR in JAX/Flax (linen): the ResNet backbone, position embeddings, the encoder-decoder, the heads and the set loss.

A port of :mod:`.modeling_detr` (the reference; Transformers has DETR in PyTorch only); the ResNet
backbone is core's (:mod:`polyformers.layers.resnet_flax`), shared with other vision plugins. Parameter
paths join with "." into our PyTorch names (through :func:`polyformers.conversion.flax_key_to_pt`),
so one checkpoint loads in both frameworks: ``model/backbone/conv_encoder/model/...`` for the
ResNet in either layout (timm's ``conv1``/``layer1/0/...`` or Transformers' own
``embedder/embedder/...``/``encoder/stages/0/layers/0/...``), ``encoder/layers/0/self_attn/q_proj``,
``mask_head/lay1``... The frozen batch norm keeps its statistics as *parameters* named ``scale``,
``bias``, ``mean`` and ``var`` (-> ``weight``, ``bias``, ``running_mean``, ``running_var``) behind
``stop_gradient``: the core's Flax model carries the ``params`` collection only, and these are
buffers in PyTorch, never trained.

Images are NHWC inside; ``pixel_values`` is NCHW (B, C, H, W) as in Transformers' Flax vision
models. The loss runs outside ``jit``: the Hungarian matching is scipy on numpy, then
:func:`detr_loss_from_indices` (pure ``jax.numpy``, differentiable and jittable) computes the
terms; a training step matches on one forward pass and differentiates the loss for those indices.

Not applied here: the PyTorch model's freezing of backbone parameters (in Flax, mask them out of
the optimizer, e.g. ``optax.masked``) and layer drop. ``inputs_embeds`` / ``encoder_outputs`` are
not inputs of the Flax models. PyTorch checkpoints in Transformers 5 names, the other ResNet layout
or of another DETR class are renamed on load as in the PyTorch model (that needs PyTorch installed).

Shapes: B batch, H x W feature map, S = H*W encoder positions, Q queries, D d_model, nh heads,
hd head size, K classes + 1 ("no object").
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from polyformers.activations_flax import ACT2FN
from polyformers.layers.resnet_flax import (  # noqa: F401  (the Flax* backbone names are re-exported for old imports)
    FlaxFrozenBatchNorm2d,
    FlaxResNetBackbone,
    FlaxTimmResNet,
    build_flax_resnet,
    conv2d,
)
from polyformers.layers.resnet_spec import ResNetSpec
from polyformers.modeling_flax_utils import FlaxPreTrainedModel, register_model_output
from polyformers.modeling_outputs import ModelOutput

from .checkpoint_names import rename_checkpoint_keys
from .matching import check_labels, hungarian_match
from .outputs_detr import DetrModelOutput, DetrObjectDetectionOutput, DetrSegmentationOutput
from .configuration_detr import DetrConfig

TORCH_NORM_EPS = 1e-5  # nn.LayerNorm, nn.GroupNorm and the frozen batch norm in the PyTorch model

# The backbone's building blocks live in core (polyformers.layers.resnet_flax); DETR's old names stay.
FlaxDetrFrozenBatchNorm2d = FlaxFrozenBatchNorm2d
_conv = conv2d

# --- outputs ---------------------------------------------------------------------------------------
# The fields of outputs_detr's classes; the names carry the framework, as in Transformers.


@register_model_output
class FlaxDetrModelOutput(DetrModelOutput):
    """:class:`~polyformers_detr.outputs_detr.DetrModelOutput` holding JAX arrays."""


@register_model_output
class FlaxDetrObjectDetectionOutput(DetrObjectDetectionOutput):
    """:class:`~polyformers_detr.outputs_detr.DetrObjectDetectionOutput` holding JAX arrays."""


@register_model_output
class FlaxDetrSegmentationOutput(DetrSegmentationOutput):
    """:class:`~polyformers_detr.outputs_detr.DetrSegmentationOutput` holding JAX arrays."""


# --- resizing as torch.nn.functional.interpolate -----------------------------------------------------


def _nearest_indices(in_size: int, out_size: int) -> np.ndarray:
    # PyTorch's legacy "nearest": src = floor(dst * in / out), scale computed in float32.
    scale = np.float32(in_size) / np.float32(out_size)
    return np.minimum(np.floor(np.arange(out_size, dtype=np.float32) * scale).astype(np.int64), in_size - 1)


def interpolate_nearest(x: jax.Array, size: tuple[int, int], axes: tuple[int, int] = (1, 2)) -> jax.Array:
    """``F.interpolate(mode="nearest")`` over two spatial ``axes`` (static sizes)."""
    rows = _nearest_indices(x.shape[axes[0]], size[0])
    cols = _nearest_indices(x.shape[axes[1]], size[1])
    return jnp.take(jnp.take(x, rows, axis=axes[0]), cols, axis=axes[1])


def _bilinear_weights(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # align_corners=False, no antialias: src = (dst + 0.5) * in / out - 0.5, clamped at 0.
    scale = in_size / out_size
    src = np.maximum((np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5, 0.0)
    low = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    return low, high, (src - low).astype(np.float32)


def interpolate_bilinear(x: jax.Array, size: tuple[int, int]) -> jax.Array:
    """``F.interpolate(mode="bilinear", align_corners=False)`` over the last two axes of ``x`` (..., h, w)."""
    low, high, frac = _bilinear_weights(x.shape[-2], size[0])
    x = jnp.take(x, low, axis=-2) * (1 - frac)[:, None] + jnp.take(x, high, axis=-2) * frac[:, None]
    low, high, frac = _bilinear_weights(x.shape[-1], size[1])
    return jnp.take(x, low, axis=-1) * (1 - frac) + jnp.take(x, high, axis=-1) * frac


# --- backbone (core layers) ---------------------------------------------------------------------------


def _resnet_spec(config: DetrConfig) -> ResNetSpec:
    # The config's normalised view (both Transformers spellings); resnet.py is not imported: it needs PyTorch.
    # ValueError for a dilated native ResNet.
    return config.resnet.to_resnet_spec()


class FlaxDetrConvEncoder(nn.Module):
    """The ResNet (``model``) and, per returned feature map, the pixel mask resized to it (nearest)."""

    config: DetrConfig

    @nn.compact
    def __call__(self, pixel_values: jax.Array, pixel_mask: jax.Array) -> list[tuple[jax.Array, jax.Array]]:
        spec = _resnet_spec(self.config)
        resnet = build_flax_resnet(spec, name="model")
        out = []
        for feature_map in resnet(pixel_values):  # each (B, H_i, W_i, C_i)
            mask = interpolate_nearest(pixel_mask.astype(jnp.float32), feature_map.shape[1:3]) > 0.5  # (B, H_i, W_i)
            out.append((feature_map, mask))
        return out


class FlaxDetrConvModel(nn.Module):
    """Holds the conv encoder as ``conv_encoder``: parameter paths ``backbone/conv_encoder/model/...``."""

    config: DetrConfig

    @nn.compact
    def __call__(self, pixel_values: jax.Array, pixel_mask: jax.Array) -> list[tuple[jax.Array, jax.Array]]:
        return FlaxDetrConvEncoder(self.config, name="conv_encoder")(pixel_values, pixel_mask)


# --- position embeddings ---------------------------------------------------------------------------------


def sine_position_embedding(mask: jax.Array, num_position_features: int, temperature: int = 10000, scale: float = 2 * math.pi) -> jax.Array:
    """The DETR paper's normalised 2D sine embedding: (B, H, W) mask -> (B, H, W, D), y channels then x."""
    mask = mask.astype(jnp.float32)
    y_embed = jnp.cumsum(mask, axis=1)  # positions count only real pixels, so padding does not shift them
    x_embed = jnp.cumsum(mask, axis=2)
    eps = 1e-6
    y_embed = y_embed / (y_embed[:, -1:, :] + eps) * scale
    x_embed = x_embed / (x_embed[:, :, -1:] + eps) * scale
    dim_t = jnp.arange(num_position_features, dtype=jnp.float32)
    dim_t = temperature ** (2 * jnp.floor(dim_t / 2) / num_position_features)
    pos_x = x_embed[..., None] / dim_t  # (B, H, W, D/2)
    pos_y = y_embed[..., None] / dim_t

    def interleave(pos: jax.Array) -> jax.Array:
        return jnp.stack((jnp.sin(pos[..., 0::2]), jnp.cos(pos[..., 1::2])), axis=4).reshape(pos.shape)

    return jnp.concatenate((interleave(pos_y), interleave(pos_x)), axis=3)


class FlaxDetrLearnedPositionEmbedding(nn.Module):
    """Learned row and column embeddings (feature maps up to 50 x 50): x channels first, then y."""

    embedding_dim: int

    @nn.compact
    def __call__(self, batch_size: int, height: int, width: int) -> jax.Array:
        if height > 50 or width > 50:
            raise ValueError(f"Learned DETR position embeddings cover feature maps up to 50 x 50, got {height} x {width}; use smaller images.")
        init = nn.initializers.uniform(1.0)
        row = nn.Embed(50, self.embedding_dim, embedding_init=init, name="row_embeddings")
        column = nn.Embed(50, self.embedding_dim, embedding_init=init, name="column_embeddings")
        x_emb = column(jnp.arange(width))  # (W, D/2)
        y_emb = row(jnp.arange(height))  # (H, D/2)
        pos = jnp.concatenate(
            [
                jnp.broadcast_to(x_emb[None], (height, width, self.embedding_dim)),
                jnp.broadcast_to(y_emb[:, None], (height, width, self.embedding_dim)),
            ],
            axis=-1,
        )  # (H, W, D)
        return jnp.broadcast_to(pos[None], (batch_size, height, width, 2 * self.embedding_dim))


# --- the Transformer ---------------------------------------------------------------------------------------


def _additive_mask(mask: jax.Array | None, dtype: Any) -> jax.Array | None:
    """(B, S) 1 = attend / 0 = padding -> (B, 1, 1, S): 0 to keep, dtype-min to drop."""
    if mask is None:
        return None
    return jnp.where(mask.astype(bool), 0.0, jnp.finfo(dtype).min).astype(dtype)[:, None, None, :]


def _dense(features: int, config: DetrConfig, dtype: Any, name: str) -> nn.Dense:
    return nn.Dense(features, kernel_init=nn.initializers.normal(config.init_std), dtype=dtype, name=name)


def _layer_norm(dtype: Any, name: str) -> nn.LayerNorm:
    return nn.LayerNorm(epsilon=TORCH_NORM_EPS, use_fast_variance=False, dtype=dtype, name=name)


class FlaxDetrAttention(nn.Module):
    """Multi-head attention where position embeddings are added to queries and keys, never to values."""

    config: DetrConfig
    num_heads: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self,
        hidden_states: jax.Array,
        attention_mask: jax.Array | None = None,
        position_embeddings: jax.Array | None = None,
        key_value_states: jax.Array | None = None,
        key_position_embeddings: jax.Array | None = None,
        deterministic: bool = True,
    ) -> tuple[jax.Array, jax.Array]:
        config = self.config
        embed_dim = config.d_model
        if embed_dim % self.num_heads:
            raise ValueError(f"d_model must be divisible by the number of heads: got d_model={embed_dim} and {self.num_heads} heads.")
        head_dim = embed_dim // self.num_heads
        batch_size, q_len, _ = hidden_states.shape
        if key_value_states is None:  # self-attention: the queries' embeddings go on the keys too
            key_value_states, key_position_embeddings = hidden_states, position_embeddings
        query_input = hidden_states if position_embeddings is None else hidden_states + position_embeddings
        key_input = key_value_states if key_position_embeddings is None else key_value_states + key_position_embeddings

        def heads(x: jax.Array) -> jax.Array:  # (B, T, D) -> (B, nh, T, hd)
            return x.reshape(batch_size, -1, self.num_heads, head_dim).transpose(0, 2, 1, 3)

        # Created in PyTorch's order (k, v, q, out), though the order does not matter for names.
        key = heads(_dense(embed_dim, config, self.dtype, "k_proj")(key_input))
        value = heads(_dense(embed_dim, config, self.dtype, "v_proj")(key_value_states))
        query = heads(_dense(embed_dim, config, self.dtype, "q_proj")(query_input))
        weights = jnp.einsum("bhqd,bhkd->bhqk", query * head_dim**-0.5, key)  # (B, nh, T, S)
        if attention_mask is not None:
            weights = weights + attention_mask
        weights = jax.nn.softmax(weights, axis=-1)
        dropped = nn.Dropout(config.attention_dropout)(weights, deterministic=deterministic)
        attn_output = jnp.einsum("bhqk,bhkd->bhqd", dropped, value).transpose(0, 2, 1, 3).reshape(batch_size, q_len, embed_dim)
        return _dense(embed_dim, config, self.dtype, "out_proj")(attn_output), weights


class FlaxDetrEncoderLayer(nn.Module):
    config: DetrConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, hidden_states: jax.Array, attention_mask: jax.Array | None, position_embeddings: jax.Array, deterministic: bool = True):
        config = self.config
        dropout = nn.Dropout(config.dropout)
        activation = ACT2FN[config.activation_function]
        residual = hidden_states
        hidden_states, weights = FlaxDetrAttention(config, config.encoder_attention_heads, self.dtype, name="self_attn")(
            hidden_states, attention_mask, position_embeddings, deterministic=deterministic
        )
        hidden_states = _layer_norm(self.dtype, "self_attn_layer_norm")(residual + dropout(hidden_states, deterministic=deterministic))
        residual = hidden_states
        hidden_states = activation(_dense(config.encoder_ffn_dim, config, self.dtype, "fc1")(hidden_states))
        hidden_states = nn.Dropout(config.activation_dropout)(hidden_states, deterministic=deterministic)
        hidden_states = dropout(_dense(config.d_model, config, self.dtype, "fc2")(hidden_states), deterministic=deterministic)
        return _layer_norm(self.dtype, "final_layer_norm")(residual + hidden_states), weights


class FlaxDetrDecoderLayer(nn.Module):
    config: DetrConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self,
        hidden_states: jax.Array,
        attention_mask: jax.Array | None,
        spatial_position_embeddings: jax.Array,
        query_position_embeddings: jax.Array,
        encoder_hidden_states: jax.Array,
        encoder_attention_mask: jax.Array | None,
        deterministic: bool = True,
    ):
        config = self.config
        dropout = nn.Dropout(config.dropout)
        activation = ACT2FN[config.activation_function]
        heads = config.decoder_attention_heads
        residual = hidden_states
        hidden_states, self_weights = FlaxDetrAttention(config, heads, self.dtype, name="self_attn")(
            hidden_states, attention_mask, query_position_embeddings, deterministic=deterministic
        )
        hidden_states = _layer_norm(self.dtype, "self_attn_layer_norm")(residual + dropout(hidden_states, deterministic=deterministic))
        residual = hidden_states
        hidden_states, cross_weights = FlaxDetrAttention(config, heads, self.dtype, name="encoder_attn")(
            hidden_states,
            encoder_attention_mask,
            query_position_embeddings,
            key_value_states=encoder_hidden_states,
            key_position_embeddings=spatial_position_embeddings,
            deterministic=deterministic,
        )
        hidden_states = _layer_norm(self.dtype, "encoder_attn_layer_norm")(residual + dropout(hidden_states, deterministic=deterministic))
        residual = hidden_states
        hidden_states = activation(_dense(config.decoder_ffn_dim, config, self.dtype, "fc1")(hidden_states))
        hidden_states = nn.Dropout(config.activation_dropout)(hidden_states, deterministic=deterministic)
        hidden_states = dropout(_dense(config.d_model, config, self.dtype, "fc2")(hidden_states), deterministic=deterministic)
        return _layer_norm(self.dtype, "final_layer_norm")(residual + hidden_states), self_weights, cross_weights


class FlaxDetrLayers(nn.Module):
    """The ``layers`` list of the encoder (``decoder=False``) or the decoder: layers named ``0``, ``1``..."""

    config: DetrConfig
    decoder: bool
    dtype: Any = jnp.float32

    def setup(self) -> None:
        layer, count = (FlaxDetrDecoderLayer, self.config.decoder_layers) if self.decoder else (FlaxDetrEncoderLayer, self.config.encoder_layers)
        self.layers = [layer(self.config, self.dtype, name=str(i)) for i in range(count)]

    def __call__(self, i: int, *args: Any, **kwargs: Any) -> Any:
        return self.layers[i](*args, **kwargs)


class FlaxDetrEncoder(nn.Module):
    config: DetrConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, inputs_embeds, attention_mask, position_embeddings, deterministic=True, output_attentions=False, output_hidden_states=False):
        hidden_states = nn.Dropout(self.config.dropout)(inputs_embeds, deterministic=deterministic)  # (B, S, D)
        mask = _additive_mask(attention_mask, hidden_states.dtype)
        layers = FlaxDetrLayers(self.config, decoder=False, dtype=self.dtype, name="layers")
        all_hidden, all_attentions = [], []
        for i in range(self.config.encoder_layers):
            all_hidden.append(hidden_states)
            hidden_states, weights = layers(i, hidden_states, mask, position_embeddings, deterministic=deterministic)
            all_attentions.append(weights)
        all_hidden.append(hidden_states)
        return hidden_states, tuple(all_hidden) if output_hidden_states else None, tuple(all_attentions) if output_attentions else None


class FlaxDetrDecoder(nn.Module):
    config: DetrConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self,
        inputs_embeds,
        attention_mask,
        encoder_hidden_states,
        encoder_attention_mask,
        spatial_position_embeddings,
        query_position_embeddings,
        deterministic=True,
        output_attentions=False,
        output_hidden_states=False,
    ):
        config = self.config
        layers = FlaxDetrLayers(config, decoder=True, dtype=self.dtype, name="layers")
        layernorm = _layer_norm(self.dtype, "layernorm")  # DETR normalises the decoder's output
        hidden_states = inputs_embeds  # (B, Q, D)
        self_mask = _additive_mask(attention_mask, hidden_states.dtype)
        cross_mask = _additive_mask(encoder_attention_mask, hidden_states.dtype)
        all_hidden, all_self, all_cross, intermediate = [inputs_embeds], [], [], []
        for i in range(config.decoder_layers):
            hidden_states, self_weights, cross_weights = layers(
                i, hidden_states, self_mask, spatial_position_embeddings, query_position_embeddings, encoder_hidden_states, cross_mask,
                deterministic=deterministic,
            )
            if i < config.decoder_layers - 1:  # hidden states: each layer's own output, the last one normalised
                all_hidden.append(hidden_states)
            if config.auxiliary_loss:  # as the PyTorch model (and Transformers): the normalised output feeds the next layer
                hidden_states = layernorm(hidden_states)
                intermediate.append(hidden_states)
            all_self.append(self_weights)
            all_cross.append(cross_weights)
        hidden_states = layernorm(hidden_states)
        all_hidden.append(hidden_states)
        return (
            hidden_states,
            tuple(all_hidden) if output_hidden_states else None,
            tuple(all_self) if output_attentions else None,
            tuple(all_cross) if output_attentions else None,
            jnp.stack(intermediate) if config.auxiliary_loss else None,  # (L, B, Q, D)
        )


# --- modules -------------------------------------------------------------------------------------------------


class FlaxDetrModule(nn.Module):
    """Backbone, 1x1 projection to d_model, position embeddings, encoder, and decoder over ``num_queries`` learned queries.

    Returns the model output and, for the segmentation head, (backbone features, projected map, mask).
    """

    config: DetrConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        self.backbone = FlaxDetrConvModel(config)
        if config.position_embedding_type == "learned":
            self.position_embedding = FlaxDetrLearnedPositionEmbedding(config.d_model // 2)
        elif config.position_embedding_type != "sine":
            raise ValueError(f"position_embedding_type must be 'sine' or 'learned', got {config.position_embedding_type!r}.")
        self.query_position_embeddings = nn.Embed(config.num_queries, config.d_model, embedding_init=nn.initializers.normal(config.init_std))
        self.input_projection = nn.Conv(config.d_model, (1, 1), kernel_init=nn.initializers.normal(config.init_std), dtype=self.dtype)
        self.encoder = FlaxDetrEncoder(config, self.dtype)
        self.decoder = FlaxDetrDecoder(config, self.dtype)

    def features(
        self,
        pixel_values: jax.Array,
        pixel_mask: jax.Array,
        decoder_attention_mask: jax.Array | None = None,
        decoder_inputs_embeds: jax.Array | None = None,
        deterministic: bool = True,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> tuple[FlaxDetrModelOutput, tuple]:
        """``pixel_values`` (B, H, W, C) NHWC, ``pixel_mask`` (B, H, W), 1 on real pixels."""
        config = self.config
        batch_size = pixel_values.shape[0]
        backbone_features = self.backbone(pixel_values, pixel_mask)
        feature_map, mask = backbone_features[-1]  # (B, H, W, C), (B, H, W)
        projected = self.input_projection(feature_map)  # (B, H, W, D)
        _, height, width, _ = projected.shape
        flat_features = projected.reshape(batch_size, height * width, config.d_model)  # (B, S, D)
        if config.position_embedding_type == "sine":
            spatial = sine_position_embedding(mask, config.d_model // 2).astype(self.dtype)
        else:
            spatial = self.position_embedding(batch_size, height, width).astype(self.dtype)
        spatial_pos = spatial.reshape(batch_size, height * width, config.d_model)
        flat_mask = mask.reshape(batch_size, height * width)

        encoder_last, encoder_hidden, encoder_attentions = self.encoder(
            flat_features, flat_mask, spatial_pos, deterministic, output_attentions, output_hidden_states
        )
        query_embeddings = self.query_position_embeddings(jnp.arange(config.num_queries))  # (Q, D)
        query_pos = jnp.broadcast_to(query_embeddings[None], (batch_size, config.num_queries, config.d_model)).astype(self.dtype)
        queries = decoder_inputs_embeds if decoder_inputs_embeds is not None else jnp.zeros_like(query_pos)
        last, hidden, self_attentions, cross_attentions, intermediate = self.decoder(
            queries, decoder_attention_mask, encoder_last, flat_mask, spatial_pos, query_pos, deterministic, output_attentions, output_hidden_states
        )
        outputs = FlaxDetrModelOutput(
            last_hidden_state=last,
            decoder_hidden_states=hidden,
            decoder_attentions=self_attentions,
            cross_attentions=cross_attentions,
            encoder_last_hidden_state=encoder_last,
            encoder_hidden_states=encoder_hidden,
            encoder_attentions=encoder_attentions,
            intermediate_hidden_states=intermediate,
        )
        return outputs, (backbone_features, projected, mask)

    def __call__(self, pixel_values, pixel_mask, decoder_attention_mask=None, decoder_inputs_embeds=None, deterministic=True,
                 output_attentions=False, output_hidden_states=False) -> FlaxDetrModelOutput:  # fmt: skip
        outputs, _ = self.features(
            pixel_values, pixel_mask, decoder_attention_mask, decoder_inputs_embeds, deterministic, output_attentions, output_hidden_states
        )
        return outputs


class FlaxDetrMLPPredictionHead(nn.Module):
    """A small MLP (ReLU between layers): the box head, ``layers/0``..``layers/{n-1}``."""

    config: DetrConfig
    hidden_dim: int
    output_dim: int
    num_layers: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        sizes = [self.hidden_dim] * (self.num_layers - 1) + [self.output_dim]
        return _DenseStack(self.config, tuple(sizes), self.dtype, name="layers")(x)


class _DenseStack(nn.Module):
    """Dense layers named ``0``, ``1``..., ReLU between them."""

    config: DetrConfig
    sizes: tuple[int, ...]
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i, size in enumerate(self.sizes):
            x = _dense(size, self.config, self.dtype, str(i))(x)
            if i < len(self.sizes) - 1:
                x = nn.relu(x)
        return x


def _detection_fields(outputs: FlaxDetrModelOutput) -> dict[str, Any]:
    return {
        "last_hidden_state": outputs.last_hidden_state,
        "decoder_hidden_states": outputs.decoder_hidden_states,
        "decoder_attentions": outputs.decoder_attentions,
        "cross_attentions": outputs.cross_attentions,
        "encoder_last_hidden_state": outputs.encoder_last_hidden_state,
        "encoder_hidden_states": outputs.encoder_hidden_states,
        "encoder_attentions": outputs.encoder_attentions,
    }


class FlaxDetrForObjectDetectionModule(nn.Module):
    """DETR with a class head (``num_labels`` + "no object") and a box head (sigmoid cx, cy, w, h)."""

    config: DetrConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.model = FlaxDetrModule(self.config, self.dtype)
        self.class_labels_classifier = _dense(self.config.num_labels + 1, self.config, self.dtype, None)
        self.bbox_predictor = FlaxDetrMLPPredictionHead(self.config, self.config.d_model, 4, 3, self.dtype)

    def heads(self, hidden: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self.class_labels_classifier(hidden), jax.nn.sigmoid(self.bbox_predictor(hidden))

    def features(self, pixel_values, pixel_mask, decoder_attention_mask=None, decoder_inputs_embeds=None, deterministic=True,
                 output_attentions=False, output_hidden_states=False):  # fmt: skip
        outputs, features = self.model.features(
            pixel_values, pixel_mask, decoder_attention_mask, decoder_inputs_embeds, deterministic, output_attentions, output_hidden_states
        )
        logits, pred_boxes = self.heads(outputs.last_hidden_state)
        auxiliary_outputs = None
        if self.config.auxiliary_loss:  # every decoder layer but the last, for the auxiliary losses
            aux_logits, aux_boxes = self.heads(outputs.intermediate_hidden_states)
            auxiliary_outputs = [{"logits": c, "pred_boxes": b} for c, b in zip(aux_logits[:-1], aux_boxes[:-1])]
        result = FlaxDetrObjectDetectionOutput(
            logits=logits, pred_boxes=pred_boxes, auxiliary_outputs=auxiliary_outputs, **_detection_fields(outputs)
        )
        return result, features

    def __call__(self, *args: Any, **kwargs: Any) -> FlaxDetrObjectDetectionOutput:
        return self.features(*args, **kwargs)[0]


class FlaxDetrMHAttentionMap(nn.Module):
    """Attention of each query over the encoder's map, per head, without values: (B, Q, nh, H, W); softmax over heads and positions."""

    config: DetrConfig
    num_heads: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, q: jax.Array, k: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        """``q`` (B, Q, D) decoder output, ``k`` (B, H, W, D) encoder memory, ``mask`` additive (B, 1, 1, H, W)."""
        hidden_dim = self.config.d_model
        head_dim = hidden_dim // self.num_heads
        init = nn.initializers.variance_scaling(self.config.init_xavier_std**2, "fan_avg", "uniform")
        q = nn.Dense(hidden_dim, kernel_init=init, dtype=self.dtype, name="q_linear")(q)
        k = nn.Dense(hidden_dim, kernel_init=init, dtype=self.dtype, name="k_linear")(k)  # the 1x1 convolution
        batch_size, num_queries = q.shape[:2]
        height, width = k.shape[1:3]
        q = q.reshape(batch_size, num_queries, self.num_heads, head_dim)  # (B, Q, nh, hd)
        k = k.reshape(batch_size, height, width, self.num_heads, head_dim)  # (B, H, W, nh, hd)
        weights = jnp.einsum("bqnc,bhwnc->bqnhw", q * float(head_dim) ** -0.5, k)
        if mask is not None:
            weights = weights + mask
        flat = jax.nn.softmax(weights.reshape(batch_size, num_queries, -1), axis=-1)
        return flat.reshape(weights.shape)


class FlaxDetrMaskHeadSmallConv(nn.Module):
    """Per-query mask logits: encoder features + attention maps, upsampled through three FPN levels (``lay1``..``out_lay``)."""

    dim: int
    context_dim: int
    activation_function: str = "relu"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, bbox_mask: jax.Array, fpns: list[jax.Array]) -> jax.Array:
        """``x`` (B, H, W, D), ``bbox_mask`` (B, Q, nh, H, W), ``fpns`` NHWC backbone maps coarse to fine -> (B*Q, H', W', 1)."""
        dim, context = self.dim, self.context_dim
        if dim % 8:
            raise ValueError(
                f"The DETR mask head takes d_model + encoder_attention_heads channels, which must be divisible by 8 "
                f"(GroupNorm with 8 groups); got {dim}."
            )
        inter = [dim, context // 2, context // 4, context // 8, context // 16]
        activation = ACT2FN[self.activation_function]
        conv_init = nn.initializers.variance_scaling(1.0, "fan_in", "uniform")  # kaiming_uniform_(a=1)

        def block(n: int, h: jax.Array) -> jax.Array:
            h = _conv(inter[n - 1], 3, use_bias=True, name=f"lay{n}", kernel_init=conv_init)(h)
            groups = min(8, inter[n - 1])
            h = nn.GroupNorm(num_groups=groups, epsilon=TORCH_NORM_EPS, use_fast_variance=False, dtype=self.dtype, name=f"gn{n}")(h)
            return activation(h)

        batch_size, num_queries = bbox_mask.shape[:2]

        def per_query(t: jax.Array) -> jax.Array:  # (B, h, w, C) -> (B*Q, h, w, C)
            return jnp.broadcast_to(t[:, None], (batch_size, num_queries, *t.shape[1:])).reshape(batch_size * num_queries, *t.shape[1:])

        attention = bbox_mask.reshape(batch_size * num_queries, *bbox_mask.shape[2:]).transpose(0, 2, 3, 1)  # (B*Q, H, W, nh)
        x = jnp.concatenate([per_query(x), attention], axis=-1)
        x = block(2, block(1, x))
        for n, fpn in enumerate(fpns, start=1):
            fpn = _conv(inter[n], 1, use_bias=True, name=f"adapter{n}", kernel_init=conv_init)(fpn)
            fpn = per_query(fpn)  # the 1x1 adapter commutes with the expansion
            x = block(n + 2, fpn + interpolate_nearest(x, fpn.shape[1:3]))
        return _conv(1, 3, use_bias=True, name="out_lay", kernel_init=conv_init)(x)


class FlaxDetrForSegmentationModule(nn.Module):
    """DETR detection (``detr``) plus a mask head over the attention maps of each query and the backbone's features."""

    config: DetrConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        channels = _resnet_spec(config).channels
        if len(channels) < 4:
            raise ValueError(
                f"DetrForSegmentation needs 4 backbone feature maps (FPN levels + the last one), got {len(channels)}: "
                f"set the backbone's out_features to ['stage1', 'stage2', 'stage3', 'stage4']."
            )
        self.detr = FlaxDetrForObjectDetectionModule(config, self.dtype)
        hidden_size, num_heads = config.d_model, config.encoder_attention_heads
        self.mask_head = FlaxDetrMaskHeadSmallConv(hidden_size + num_heads, hidden_size, config.activation_function, self.dtype)
        self.bbox_attention = FlaxDetrMHAttentionMap(config, num_heads, self.dtype)

    def __call__(self, pixel_values, pixel_mask, decoder_attention_mask=None, decoder_inputs_embeds=None, deterministic=True,
                 output_attentions=False, output_hidden_states=False) -> FlaxDetrSegmentationOutput:  # fmt: skip
        detection, (backbone_features, projected, mask) = self.detr.features(
            pixel_values, pixel_mask, decoder_attention_mask, decoder_inputs_embeds, deterministic, output_attentions, output_hidden_states
        )
        batch_size, height, width, _ = projected.shape
        memory = detection.encoder_last_hidden_state.reshape(batch_size, height, width, self.config.d_model)
        attention_mask = jnp.where(mask, 0.0, jnp.finfo(memory.dtype).min).astype(memory.dtype)[:, None, None]  # (B, 1, 1, H, W)
        bbox_mask = self.bbox_attention(detection.last_hidden_state, memory, attention_mask)  # (B, Q, nh, H, W)
        fpns = [backbone_features[2][0], backbone_features[1][0], backbone_features[0][0]]  # coarse to fine
        seg_masks = self.mask_head(projected, bbox_mask, fpns)  # (B*Q, H', W', 1)
        pred_masks = seg_masks.reshape(batch_size, self.config.num_queries, seg_masks.shape[1], seg_masks.shape[2])
        fields = {k: getattr(detection, k) for k in ("logits", "pred_boxes", "auxiliary_outputs")}
        return FlaxDetrSegmentationOutput(pred_masks=pred_masks, **fields, **_detection_fields(detection))


# --- the loss -----------------------------------------------------------------------------------------------


def center_to_corners(boxes: Any) -> Any:
    """(cx, cy, w, h) -> (x0, y0, x1, y1); numpy or jax arrays."""
    xp = jnp if isinstance(boxes, jax.Array) else np
    cx, cy, w, h = (boxes[..., i] for i in range(4))
    return xp.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], axis=-1)


def generalized_box_iou(boxes1: Any, boxes2: Any) -> Any:
    """Generalized IoU of (N, 4) and (M, 4) corner boxes: (N, M); numpy or jax arrays."""
    xp = jnp if isinstance(boxes1, jax.Array) or isinstance(boxes2, jax.Array) else np
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    inter = xp.prod(xp.clip(xp.minimum(boxes1[:, None, 2:], boxes2[:, 2:]) - xp.maximum(boxes1[:, None, :2], boxes2[:, :2]), 0, None), axis=-1)
    union = area1[:, None] + area2 - inter
    enclosing = xp.prod(xp.clip(xp.maximum(boxes1[:, None, 2:], boxes2[:, 2:]) - xp.minimum(boxes1[:, None, :2], boxes2[:, :2]), 0, None), axis=-1)
    return inter / union - (enclosing - union) / enclosing


def sigmoid_focal_loss(inputs: jax.Array, targets: jax.Array, num_boxes: float, alpha: float = 0.25, gamma: float = 2) -> jax.Array:
    prob = jax.nn.sigmoid(inputs)
    ce = jnp.maximum(inputs, 0) - inputs * targets + jnp.log1p(jnp.exp(-jnp.abs(inputs)))  # BCE with logits, stable
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.mean(1).sum() / num_boxes


def dice_loss(inputs: jax.Array, targets: jax.Array, num_boxes: float) -> jax.Array:
    inputs = jax.nn.sigmoid(inputs)
    numerator = 2 * (inputs * targets).sum(1)
    denominator = inputs.sum(-1) + targets.sum(-1)
    return (1 - (numerator + 1) / (denominator + 1)).sum() / num_boxes


def _set_losses(config: DetrConfig, logits, pred_boxes, labels, indices, num_boxes: float, pred_masks=None) -> dict[str, jax.Array]:
    batch_size, num_queries, num_classes_plus_one = logits.shape
    # Indices may be numpy or traced arrays (a jitted training step); only their lengths must be static.
    batch = np.concatenate([np.full(len(src), b, dtype=np.int32) for b, (src, _) in enumerate(indices)])
    query = jnp.concatenate([jnp.asarray(src, jnp.int32) for src, _ in indices])
    matched_classes = jnp.concatenate([jnp.asarray(t["class_labels"]).astype(jnp.int32)[jnp.asarray(j)] for t, (_, j) in zip(labels, indices)])

    # labels: cross-entropy weighted by class, "no object" weighted eos_coefficient (a weighted mean, as PyTorch's).
    target_classes = jnp.full((batch_size, num_queries), config.num_labels, dtype=jnp.int32).at[batch, query].set(matched_classes)
    empty_weight = jnp.ones(num_classes_plus_one, logits.dtype).at[-1].set(config.eos_coefficient)
    log_prob = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(log_prob, target_classes[..., None], axis=-1)[..., 0]
    weight = empty_weight[target_classes]
    losses = {"loss_ce": (weight * nll).sum() / weight.sum()}

    # boxes: L1 and GIoU of matched pairs, per box.
    source = pred_boxes[batch, query]  # (M, 4)
    target = jnp.concatenate([jnp.asarray(t["boxes"], pred_boxes.dtype)[jnp.asarray(j)] for t, (_, j) in zip(labels, indices)], axis=0)
    losses["loss_bbox"] = jnp.abs(source - target).sum() / num_boxes
    giou = jnp.diag(generalized_box_iou(center_to_corners(source), center_to_corners(target)))
    losses["loss_giou"] = (1 - giou).sum() / num_boxes

    # cardinality: for logging, no gradient.
    predicted = (jnp.argmax(jax.lax.stop_gradient(logits), -1) != num_classes_plus_one - 1).sum(1).astype(jnp.float32)
    target_lengths = jnp.asarray([len(t["class_labels"]) for t in labels], jnp.float32)
    losses["cardinality_error"] = jnp.abs(predicted - target_lengths).mean()

    if pred_masks is not None:
        # Predicted masks upsampled (bilinear) to the targets' padded size, then focal + dice.
        masks = [jnp.asarray(t["masks"], pred_masks.dtype) for t in labels]
        height, width = max(m.shape[-2] for m in masks), max(m.shape[-1] for m in masks)
        target_masks = jnp.concatenate(
            [jnp.pad(m, ((0, 0), (0, height - m.shape[-2]), (0, width - m.shape[-1])))[jnp.asarray(j)] for m, (_, j) in zip(masks, indices)]
        )
        source_masks = interpolate_bilinear(pred_masks[batch, query], (height, width))  # (M, H, W)
        source_masks, target_masks = source_masks.reshape(len(query), -1), target_masks.reshape(len(query), -1)
        losses["loss_mask"] = sigmoid_focal_loss(source_masks, target_masks, num_boxes)
        losses["loss_dice"] = dice_loss(source_masks, target_masks, num_boxes)
    return losses


def detr_loss_from_indices(
    config: DetrConfig,
    outputs: Any,
    labels: list[dict[str, Any]],
    indices: list[tuple[np.ndarray, np.ndarray]],
    auxiliary_indices: list[list[tuple[np.ndarray, np.ndarray]]] | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Total loss and every term for given matchings: pure ``jax.numpy``, differentiable and jittable.

    ``indices`` (from :func:`hungarian_match`) may be traced arrays: a jitted training step takes
    them as arguments and compiles once, as long as each image keeps its number of targets.

    ``outputs`` has ``logits``, ``pred_boxes``, (``pred_masks``,) (``auxiliary_outputs``). The
    total weighs ``loss_ce`` by 1 and the rest by their ``*_loss_coefficient``; ``cardinality_error``
    is reported, not added.
    """
    pred_masks = getattr(outputs, "pred_masks", None)
    num_boxes = max(float(sum(len(t["class_labels"]) for t in labels)), 1.0)
    loss_dict = _set_losses(config, outputs.logits, outputs.pred_boxes, labels, indices, num_boxes, pred_masks)
    weight_dict = {"loss_ce": 1, "loss_bbox": config.bbox_loss_coefficient, "loss_giou": config.giou_loss_coefficient}
    if pred_masks is not None:
        weight_dict.update(loss_mask=config.mask_loss_coefficient, loss_dice=config.dice_loss_coefficient)
    if config.auxiliary_loss:
        if auxiliary_indices is None:
            raise ValueError("config.auxiliary_loss is set: pass auxiliary_indices (one matching per auxiliary output).")
        for i, (aux, aux_indices) in enumerate(zip(outputs.auxiliary_outputs, auxiliary_indices)):
            aux_losses = _set_losses(config, aux["logits"], aux["pred_boxes"], labels, aux_indices, num_boxes)
            loss_dict.update({f"{k}_{i}": v for k, v in aux_losses.items()})
        base = dict(weight_dict)
        weight_dict.update({f"{k}_{i}": v for i in range(config.decoder_layers - 1) for k, v in base.items() if k not in ("loss_mask", "loss_dice")})
    loss = sum(loss_dict[k] * weight_dict[k] for k in loss_dict if k in weight_dict)
    return loss, loss_dict


def detr_match(config: DetrConfig, outputs: Any, labels: list[dict[str, Any]]) -> tuple[list, list | None]:
    """The Hungarian matchings of the final predictions and (with ``auxiliary_loss``) each auxiliary output."""
    indices = hungarian_match(config, outputs.logits, outputs.pred_boxes, labels)
    auxiliary = None
    if config.auxiliary_loss and outputs.auxiliary_outputs is not None:
        auxiliary = [hungarian_match(config, a["logits"], a["pred_boxes"], labels) for a in outputs.auxiliary_outputs]
    return indices, auxiliary


# --- the pre-trained model classes ----------------------------------------------------------------------------


class FlaxDetrPreTrainedModel(FlaxPreTrainedModel):
    """Inputs and defaults shared by every Flax DETR model; ``module_class`` is the task's module."""

    config_class = DetrConfig
    base_model_prefix = "model"
    main_input_name = "pixel_values"
    _keys_to_ignore_on_load_unexpected = [r"num_batches_tracked$"]

    def __init__(self, config: DetrConfig, input_shape: tuple[int, ...] | None = None, seed: int = 0, dtype: Any = jnp.float32,
                 _do_init: bool = True, **kwargs: Any) -> None:  # fmt: skip
        if input_shape is None:
            input_shape = (1, config.num_channels, 64, 64)
        super().__init__(config, input_shape=input_shape, seed=seed, dtype=dtype, _do_init=_do_init, **kwargs)

    def _match_checkpoint(self, checkpoint: dict[Any, np.ndarray], fmt: str, ignore_mismatched_sizes: bool) -> tuple[Any, Any]:
        if fmt == "pt":
            checkpoint = self._rename_pt_checkpoint(checkpoint)
        return super()._match_checkpoint(checkpoint, fmt, ignore_mismatched_sizes)

    def _rename_pt_checkpoint(self, state_dict: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """As the PyTorch model's loading: Transformers 5 / 4 spellings, the other ResNet layout, another DETR class."""
        return rename_checkpoint_keys(state_dict, type(self).__name__.removeprefix("Flax"), _resnet_spec(self.config).layout)

    def dummy_inputs(self, input_shape: tuple[int, ...]) -> dict[str, Any]:
        batch_size, channels, height, width = input_shape
        return {
            "pixel_values": jnp.zeros((batch_size, height, width, channels), self.dtype),  # NHWC, as the module takes it
            "pixel_mask": jnp.ones((batch_size, height, width), "i4"),
        }

    def __call__(
        self,
        pixel_values: Any,
        pixel_mask: Any = None,
        decoder_attention_mask: Any = None,
        decoder_inputs_embeds: Any = None,
        labels: list[dict[str, Any]] | None = None,
        params: dict | None = None,
        dropout_rng: jax.Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> ModelOutput | tuple:
        """``pixel_values`` (B, C, H, W); ``pixel_mask`` (B, H, W), 1 on real pixels (default: all real).

        ``labels`` (detection and segmentation models): one dict per image with ``class_labels``
        (N,), ``boxes`` (N, 4) normalised (cx, cy, w, h), and ``masks`` (N, H, W) for segmentation;
        the loss is computed outside ``jit`` (scipy matching). ``train=True`` enables dropout and needs ``dropout_rng``.
        """
        config = self.config
        output_attentions = output_attentions if output_attentions is not None else config.output_attentions
        output_hidden_states = output_hidden_states if output_hidden_states is not None else config.output_hidden_states
        return_dict = return_dict if return_dict is not None else config.use_return_dict
        pixel_values = jnp.asarray(pixel_values, self.dtype)
        if pixel_values.ndim != 4:
            raise ValueError(f"pixel_values must be (batch, channels, height, width), got shape {tuple(pixel_values.shape)}.")
        batch_size, _, height, width = pixel_values.shape
        pixel_mask = jnp.ones((batch_size, height, width), "i4") if pixel_mask is None else jnp.asarray(pixel_mask, "i4")
        inputs = {"pixel_values": jnp.transpose(pixel_values, (0, 2, 3, 1)), "pixel_mask": pixel_mask}  # NCHW -> NHWC
        if decoder_attention_mask is not None:
            inputs["decoder_attention_mask"] = jnp.asarray(decoder_attention_mask, "i4")
        if decoder_inputs_embeds is not None:
            inputs["decoder_inputs_embeds"] = jnp.asarray(decoder_inputs_embeds, self.dtype)
        outputs = self._run(
            inputs, params=params, dropout_rng=dropout_rng, train=train,
            output_attentions=bool(output_attentions), output_hidden_states=bool(output_hidden_states),
        )  # fmt: skip
        if labels is not None:
            if not hasattr(outputs, "logits"):
                raise ValueError(
                    f"{type(self).__name__} has no detection head: pass labels to FlaxDetrForObjectDetection or "
                    f"FlaxDetrForSegmentation."
                )
            check_labels(labels, batch_size, hasattr(outputs, "pred_masks"))
            indices, auxiliary = detr_match(config, outputs, labels)
            loss, loss_dict = detr_loss_from_indices(config, outputs, labels, indices, auxiliary)
            fields = {f.name: getattr(outputs, f.name) for f in dataclasses.fields(outputs)}
            outputs = type(outputs)(**{**fields, "loss": loss, "loss_dict": loss_dict})
        return outputs if return_dict else outputs.to_tuple()


class FlaxDetrModel(FlaxDetrPreTrainedModel):
    module_class = FlaxDetrModule


class FlaxDetrForObjectDetection(FlaxDetrPreTrainedModel):
    module_class = FlaxDetrForObjectDetectionModule


class FlaxDetrForSegmentation(FlaxDetrPreTrainedModel):
    module_class = FlaxDetrForSegmentationModule


__all__ = [
    "FlaxDetrForObjectDetection",
    "FlaxDetrForSegmentation",
    "FlaxDetrModel",
    "FlaxDetrPreTrainedModel",
    "detr_loss_from_indices",
    "detr_match",
    "hungarian_match",
]
