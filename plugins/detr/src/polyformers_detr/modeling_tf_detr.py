"""DETR in TensorFlow (Keras 3): backbone and position embeddings, the encoder-decoder, the models, then the loss.

Transformers has DETR in PyTorch only; this mirrors :mod:`polyformers_detr.modeling_detr` line for
line so that converted weights give the same outputs; the ResNet backbone is core's
(:mod:`polyformers.layers.resnet_tf`), shared with other vision plugins. Layers are named so that
:func:`polyformers.conversion.tf_name_to_pt` maps every variable to our PyTorch name with the
standard table alone (no family renames, so our PyTorch ``from_tf=True`` reads ``tf_model.h5``
without knowing this file): ``model/backbone/conv_encoder/model/embedder/embedder/convolution/kernel:0``
-> ``model.backbone.conv_encoder.model.embedder.embedder.convolution.weight``; list items are
``layers_._0`` (Transformers' TF convention, read as ``layers.0``).

Images come in as ``pixel_values`` (B, 3, H, W), as in Transformers' TensorFlow vision models, and
are transposed once to NHWC for Keras' convolutions; every feature map inside is (B, H, W, C).
Padding of convolutions and max-pooling is explicit (PyTorch pads both sides alike, Keras' "same"
does not for stride 2). The frozen batch norm, sine embedding, nearest-neighbour mask resizing and
GroupNorm follow PyTorch's formulas exactly.

The loss matches queries to targets with scipy's Hungarian solver on numpy copies of the
predictions, so it runs eagerly: train with ``tf.GradientTape`` (Keras ``fit`` would need the
per-image label dicts, of varying sizes, to pass through its data adapters; not supported yet).

Shapes: B batch, H x W feature map, C channels, S = H*W encoder positions, Q queries, D d_model,
nh heads, hd head size, K classes + 1 ("no object").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from polyformers.activations_tf import get_tf_activation
from polyformers.layers.resnet_spec import ResNetSpec
from polyformers.layers.resnet_tf import (  # noqa: F401  (the TF* backbone names are re-exported for old imports)
    TFBuiltOnCall,
    TFFrozenBatchNorm2d,
    TFPaddedConv2D,
    TFResNetBackbone,
    TFTimmBlock,
    TFTimmResNet,
    build_tf_resnet,
    list_name,
    max_pool_3x3_s2,
)
from polyformers.modeling_outputs import ModelOutput
from polyformers.modeling_tf_utils import TFPreTrainedModel, get_initializer, shape_list, tf_output_class, unpack_inputs

from .checkpoint_names import rename_checkpoint_keys
from .matching import check_labels, hungarian_match
from .outputs_detr import DetrModelOutput, DetrObjectDetectionOutput, DetrSegmentationOutput
from .configuration_detr import DetrConfig

TORCH_NORM_EPS = 1e-5  # PyTorch's LayerNorm, GroupNorm and BatchNorm default

# The backbone's building blocks live in core (polyformers.layers.resnet_tf); DETR's old names stay.
TFDetrConv2D = TFPaddedConv2D
TFDetrFrozenBatchNorm2d = TFFrozenBatchNorm2d
_BuiltOnCall = TFBuiltOnCall
_list_name = list_name
_max_pool_3x3_s2 = max_pool_3x3_s2

# --- outputs ---------------------------------------------------------------------------------------
# The fields of outputs_detr's classes; the names carry the framework, as in Transformers.


class TFDetrModelOutput(DetrModelOutput):
    """:class:`~polyformers_detr.outputs_detr.DetrModelOutput` holding TensorFlow arrays."""


class TFDetrObjectDetectionOutput(DetrObjectDetectionOutput):
    """:class:`~polyformers_detr.outputs_detr.DetrObjectDetectionOutput` holding TensorFlow arrays."""


class TFDetrSegmentationOutput(DetrSegmentationOutput):
    """:class:`~polyformers_detr.outputs_detr.DetrSegmentationOutput` holding TensorFlow arrays."""


# --- small NHWC building blocks -----------------------------------------------------------------------


class TFDetrGroupNorm(keras.layers.Layer):
    """PyTorch's GroupNorm on NHWC: each group of channels normalised over space and its channels."""

    def __init__(self, groups: int, epsilon: float = TORCH_NORM_EPS, **kwargs: Any):
        super().__init__(**kwargs)
        self.groups = groups
        self.epsilon = epsilon

    def build(self, input_shape: Any) -> None:
        channels = input_shape[-1]
        self.gamma = self.add_weight(shape=(channels,), initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=(channels,), initializer="zeros", name="beta")

    def call(self, x: tf.Tensor) -> tf.Tensor:
        batch, height, width, channels = shape_list(x)
        grouped = tf.reshape(x, (batch, height, width, self.groups, channels // self.groups))
        mean, variance = tf.nn.moments(grouped, axes=[1, 2, 4], keepdims=True)
        grouped = (grouped - mean) * tf.math.rsqrt(variance + self.epsilon)
        return tf.reshape(grouped, (batch, height, width, channels)) * self.gamma + self.beta


def _nearest_indices(in_size: int | tf.Tensor, out_size: int | tf.Tensor) -> tf.Tensor:
    """PyTorch's ``mode="nearest"`` source indices: ``floor(dst * in / out)``, clipped."""
    scale = tf.cast(in_size, tf.float32) / tf.cast(out_size, tf.float32)
    idx = tf.cast(tf.floor(tf.cast(tf.range(out_size), tf.float32) * scale), tf.int32)
    return tf.minimum(idx, tf.cast(in_size, tf.int32) - 1)


def resize_nearest(x: tf.Tensor, size: tuple[Any, Any], spatial_axes: tuple[int, int] = (1, 2)) -> tf.Tensor:
    """``F.interpolate(..., size, mode="nearest")`` along two axes of any tensor."""
    height_axis, width_axis = spatial_axes
    shape = tf.shape(x)
    x = tf.gather(x, _nearest_indices(shape[height_axis], size[0]), axis=height_axis)
    return tf.gather(x, _nearest_indices(shape[width_axis], size[1]), axis=width_axis)


# --- the ResNet backbone (core layers), both layouts ------------------------------------------------------


def _resnet_spec(config: DetrConfig) -> ResNetSpec:
    # The config's normalised view (both Transformers spellings); ValueError for a dilated native ResNet.
    return config.resnet.to_resnet_spec()


class TFDetrConvEncoder(_BuiltOnCall):
    """The ResNet (``model``) and, per returned feature map, the pixel mask resized to it."""

    def __init__(self, config: DetrConfig, **kwargs: Any):
        super().__init__(**kwargs)
        spec = _resnet_spec(config)
        self.layout = spec.layout
        self.model = build_tf_resnet(spec, name="model")
        self.intermediate_channel_sizes = spec.channels
        # As the PyTorch model (and Transformers): timm keeps the stem and layer1 frozen; the native
        # layout is frozen whole (Transformers' freezing test matches none of its names).
        if spec.layout == "timm":
            self.model.conv1.trainable = False
            for block in self.model.stages[0]:
                block.trainable = False
        else:
            self.model.trainable = False

    def call(self, pixel_values: tf.Tensor, pixel_mask: tf.Tensor) -> list[tuple[tf.Tensor, tf.Tensor]]:
        out = []
        for feature_map in self.model(pixel_values):  # each (B, H_i, W_i, C_i)
            size = tf.shape(feature_map)[1:3]
            mask = resize_nearest(tf.cast(pixel_mask, tf.float32), (size[0], size[1])) > 0  # (B, H_i, W_i)
            out.append((feature_map, mask))
        return out


class TFDetrConvModel(_BuiltOnCall):
    """Holds the conv encoder as ``conv_encoder``: the names are ``backbone/conv_encoder/model/*``."""

    def __init__(self, config: DetrConfig, **kwargs: Any):
        super().__init__(**kwargs)
        self.conv_encoder = TFDetrConvEncoder(config, name="conv_encoder")

    def call(self, pixel_values: tf.Tensor, pixel_mask: tf.Tensor) -> list[tuple[tf.Tensor, tf.Tensor]]:
        return self.conv_encoder(pixel_values, pixel_mask)


def sine_position_embedding(
    batch_size: Any, height: Any, width: Any, mask: tf.Tensor | None, num_position_features: int, temperature: int = 10000, scale: float = 2 * math.pi
) -> tf.Tensor:
    """DETR's normalised 2D sine/cosine embedding, (B, H, W, D): D/2 channels for y, then D/2 for x."""
    if mask is None:
        y_embed = tf.broadcast_to(tf.cast(tf.range(1, height + 1), tf.float32)[None, :, None], (batch_size, height, width))
        x_embed = tf.broadcast_to(tf.cast(tf.range(1, width + 1), tf.float32)[None, None, :], (batch_size, height, width))
    else:  # positions count only real pixels, so padding does not shift them
        y_embed = tf.cumsum(tf.cast(mask, tf.float32), axis=1)
        x_embed = tf.cumsum(tf.cast(mask, tf.float32), axis=2)
    eps = 1e-6
    y_embed = y_embed / (y_embed[:, -1:, :] + eps) * scale
    x_embed = x_embed / (x_embed[:, :, -1:] + eps) * scale
    dim_t = tf.range(num_position_features, dtype=tf.float32)
    dim_t = tf.pow(float(temperature), 2 * tf.floor(dim_t / 2) / num_position_features)
    pos_x = x_embed[..., None] / dim_t  # (B, H, W, D/2)
    pos_y = y_embed[..., None] / dim_t

    def interleave(pos: tf.Tensor) -> tf.Tensor:  # sin of even channels, cos of odd ones, interleaved
        stacked = tf.stack([tf.sin(pos[..., 0::2]), tf.cos(pos[..., 1::2])], axis=4)
        return tf.reshape(stacked, tf.concat([tf.shape(pos)[:3], [-1]], axis=0))

    return tf.concat([interleave(pos_y), interleave(pos_x)], axis=3)


class TFDetrLearnedPositionEmbedding(keras.layers.Layer):
    """Learned row and column embeddings (feature maps up to 50 x 50): x channels first, then y."""

    def __init__(self, embedding_dim: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.row_embeddings = keras.layers.Embedding(50, embedding_dim, embeddings_initializer="uniform", name="row_embeddings")
        self.column_embeddings = keras.layers.Embedding(50, embedding_dim, embeddings_initializer="uniform", name="column_embeddings")

    def build(self, input_shape: Any = None) -> None:
        self.row_embeddings.build((None,))
        self.column_embeddings.build((None,))

    def embed(self, batch_size: Any, height: Any, width: Any) -> tf.Tensor:
        if isinstance(height, int) and isinstance(width, int) and (height > 50 or width > 50):
            raise ValueError(f"Learned DETR position embeddings cover feature maps up to 50 x 50, got {height} x {width}; use smaller images.")
        x_emb = self.column_embeddings(tf.range(width))  # (W, D/2)
        y_emb = self.row_embeddings(tf.range(height))  # (H, D/2)
        half = x_emb.shape[-1]
        columns = tf.broadcast_to(x_emb[None], (height, width, half))
        rows = tf.broadcast_to(y_emb[:, None], (height, width, half))
        pos = tf.concat([columns, rows], -1)  # (H, W, D)
        return tf.broadcast_to(pos[None], (batch_size, height, width, pos.shape[-1]))  # (B, H, W, D)


# --- the Transformer --------------------------------------------------------------------------------


def _additive_mask(mask: tf.Tensor | None, dtype: tf.DType) -> tf.Tensor | None:
    """(B, S) 1 = attend / 0 = padding -> (B, 1, 1, S): 0 to keep, dtype-min to drop."""
    if mask is None:
        return None
    keep = tf.cast(mask, tf.bool)[:, None, None, :]
    return tf.where(keep, tf.zeros((), dtype), tf.fill((), dtype.min))


class TFDetrAttention(keras.layers.Layer):
    """Multi-head attention where position embeddings are added to queries and keys, never to values."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, init_std: float = 0.02, **kwargs: Any):
        super().__init__(**kwargs)
        if embed_dim % num_heads:
            raise ValueError(f"d_model must be divisible by the number of heads: got d_model={embed_dim} and {num_heads} heads.")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.scaling = self.head_dim**-0.5
        init = get_initializer(init_std)
        self.k_proj = keras.layers.Dense(embed_dim, kernel_initializer=init, name="k_proj")
        self.v_proj = keras.layers.Dense(embed_dim, kernel_initializer=init, name="v_proj")
        self.q_proj = keras.layers.Dense(embed_dim, kernel_initializer=init, name="q_proj")
        self.out_proj = keras.layers.Dense(embed_dim, kernel_initializer=init, name="out_proj")
        self.dropout = keras.layers.Dropout(dropout)

    def build(self, input_shape: Any = None) -> None:
        for dense in (self.k_proj, self.v_proj, self.q_proj, self.out_proj):
            dense.build((None, None, self.embed_dim))

    def call(
        self,
        hidden_states: tf.Tensor,
        attention_mask: tf.Tensor | None = None,
        position_embeddings: tf.Tensor | None = None,
        key_value_states: tf.Tensor | None = None,
        key_position_embeddings: tf.Tensor | None = None,
        training: bool = False,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        batch_size, q_len = shape_list(hidden_states)[:2]
        if key_value_states is None:  # self-attention: the queries' embeddings go on the keys too
            key_value_states, key_position_embeddings = hidden_states, position_embeddings
        query_input = hidden_states if position_embeddings is None else hidden_states + position_embeddings
        key_input = key_value_states if key_position_embeddings is None else key_value_states + key_position_embeddings

        def heads(x: tf.Tensor) -> tf.Tensor:  # (B, T, D) -> (B, nh, T, hd)
            return tf.transpose(tf.reshape(x, (batch_size, -1, self.num_heads, self.head_dim)), (0, 2, 1, 3))

        query, key, value = heads(self.q_proj(query_input)), heads(self.k_proj(key_input)), heads(self.v_proj(key_value_states))
        weights = tf.matmul(query, key, transpose_b=True) * self.scaling  # (B, nh, T, S)
        if attention_mask is not None:
            weights = weights + attention_mask
        weights = tf.nn.softmax(weights, axis=-1)
        attn_output = tf.matmul(self.dropout(weights, training=training), value)  # (B, nh, T, hd)
        attn_output = tf.reshape(tf.transpose(attn_output, (0, 2, 1, 3)), (batch_size, q_len, self.embed_dim))
        return self.out_proj(attn_output), weights


class TFDetrEncoderLayer(keras.layers.Layer):
    def __init__(self, config: DetrConfig, **kwargs: Any):
        super().__init__(**kwargs)
        d_model, init = config.d_model, get_initializer(config.init_std)
        self.d_model, self.ffn_dim = d_model, config.encoder_ffn_dim
        self.self_attn = TFDetrAttention(d_model, config.encoder_attention_heads, config.attention_dropout, config.init_std, name="self_attn")
        self.self_attn_layer_norm = keras.layers.LayerNormalization(epsilon=TORCH_NORM_EPS, name="self_attn_layer_norm")
        self.activation_fn = get_tf_activation(config.activation_function)
        self.dropout = keras.layers.Dropout(config.dropout)
        self.activation_dropout = keras.layers.Dropout(config.activation_dropout)
        self.fc1 = keras.layers.Dense(config.encoder_ffn_dim, kernel_initializer=init, name="fc1")
        self.fc2 = keras.layers.Dense(d_model, kernel_initializer=init, name="fc2")
        self.final_layer_norm = keras.layers.LayerNormalization(epsilon=TORCH_NORM_EPS, name="final_layer_norm")

    def build(self, input_shape: Any = None) -> None:
        self.self_attn.build(None)
        self.self_attn_layer_norm.build((None, None, self.d_model))
        self.fc1.build((None, None, self.d_model))
        self.fc2.build((None, None, self.ffn_dim))
        self.final_layer_norm.build((None, None, self.d_model))

    def call(self, hidden_states, attention_mask, position_embeddings, training=False):
        residual = hidden_states
        hidden_states, weights = self.self_attn(hidden_states, attention_mask, position_embeddings, training=training)
        hidden_states = self.self_attn_layer_norm(residual + self.dropout(hidden_states, training=training))
        residual = hidden_states
        hidden_states = self.activation_dropout(self.activation_fn(self.fc1(hidden_states)), training=training)
        hidden_states = self.dropout(self.fc2(hidden_states), training=training)
        return self.final_layer_norm(residual + hidden_states), weights


class TFDetrDecoderLayer(keras.layers.Layer):
    def __init__(self, config: DetrConfig, **kwargs: Any):
        super().__init__(**kwargs)
        d_model, init = config.d_model, get_initializer(config.init_std)
        self.d_model, self.ffn_dim = d_model, config.decoder_ffn_dim
        heads, attn_dropout = config.decoder_attention_heads, config.attention_dropout
        self.self_attn = TFDetrAttention(d_model, heads, attn_dropout, config.init_std, name="self_attn")
        self.self_attn_layer_norm = keras.layers.LayerNormalization(epsilon=TORCH_NORM_EPS, name="self_attn_layer_norm")
        self.encoder_attn = TFDetrAttention(d_model, heads, attn_dropout, config.init_std, name="encoder_attn")
        self.encoder_attn_layer_norm = keras.layers.LayerNormalization(epsilon=TORCH_NORM_EPS, name="encoder_attn_layer_norm")
        self.activation_fn = get_tf_activation(config.activation_function)
        self.dropout = keras.layers.Dropout(config.dropout)
        self.activation_dropout = keras.layers.Dropout(config.activation_dropout)
        self.fc1 = keras.layers.Dense(config.decoder_ffn_dim, kernel_initializer=init, name="fc1")
        self.fc2 = keras.layers.Dense(d_model, kernel_initializer=init, name="fc2")
        self.final_layer_norm = keras.layers.LayerNormalization(epsilon=TORCH_NORM_EPS, name="final_layer_norm")

    def build(self, input_shape: Any = None) -> None:
        self.self_attn.build(None)
        self.encoder_attn.build(None)
        for norm in (self.self_attn_layer_norm, self.encoder_attn_layer_norm, self.final_layer_norm):
            norm.build((None, None, self.d_model))
        self.fc1.build((None, None, self.d_model))
        self.fc2.build((None, None, self.ffn_dim))

    def call(
        self, hidden_states, attention_mask, spatial_position_embeddings, query_position_embeddings, encoder_hidden_states,
        encoder_attention_mask, training=False,
    ):
        residual = hidden_states
        hidden_states, self_weights = self.self_attn(hidden_states, attention_mask, query_position_embeddings, training=training)
        hidden_states = self.self_attn_layer_norm(residual + self.dropout(hidden_states, training=training))
        residual = hidden_states
        hidden_states, cross_weights = self.encoder_attn(
            hidden_states, encoder_attention_mask, query_position_embeddings,
            key_value_states=encoder_hidden_states, key_position_embeddings=spatial_position_embeddings, training=training,
        )
        hidden_states = self.encoder_attn_layer_norm(residual + self.dropout(hidden_states, training=training))
        residual = hidden_states
        hidden_states = self.activation_dropout(self.activation_fn(self.fc1(hidden_states)), training=training)
        hidden_states = self.dropout(self.fc2(hidden_states), training=training)
        return self.final_layer_norm(residual + hidden_states), self_weights, cross_weights


class TFDetrEncoder(keras.layers.Layer):
    def __init__(self, config: DetrConfig, **kwargs: Any):
        super().__init__(**kwargs)
        self.dropout = keras.layers.Dropout(config.dropout)
        self.layers = [TFDetrEncoderLayer(config, name=_list_name("layers", i)) for i in range(config.encoder_layers)]

    def build(self, input_shape: Any = None) -> None:
        for layer in self.layers:
            layer.build(None)

    def call(self, inputs_embeds, attention_mask, position_embeddings, output_attentions, output_hidden_states, training=False):
        hidden_states = self.dropout(inputs_embeds, training=training)  # (B, S, D)
        mask = _additive_mask(attention_mask, hidden_states.dtype)
        all_hidden, all_attentions = [], []
        for layer in self.layers:
            if output_hidden_states:
                all_hidden.append(hidden_states)
            hidden_states, weights = layer(hidden_states, mask, position_embeddings, training=training)
            all_attentions.append(weights)
        if output_hidden_states:
            all_hidden.append(hidden_states)
        return hidden_states, tuple(all_hidden) if output_hidden_states else None, tuple(all_attentions) if output_attentions else None


class TFDetrDecoder(keras.layers.Layer):
    def __init__(self, config: DetrConfig, **kwargs: Any):
        super().__init__(**kwargs)
        self.d_model = config.d_model
        self.auxiliary_loss = config.auxiliary_loss
        self.layers = [TFDetrDecoderLayer(config, name=_list_name("layers", i)) for i in range(config.decoder_layers)]
        self.layernorm = keras.layers.LayerNormalization(epsilon=TORCH_NORM_EPS, name="layernorm")  # DETR normalises the decoder's output

    def build(self, input_shape: Any = None) -> None:
        for layer in self.layers:
            layer.build(None)
        self.layernorm.build((None, None, self.d_model))

    def call(
        self, inputs_embeds, attention_mask, encoder_hidden_states, encoder_attention_mask, spatial_position_embeddings,
        query_position_embeddings, output_attentions, output_hidden_states, training=False,
    ):
        hidden_states = inputs_embeds  # (B, Q, D)
        self_mask = _additive_mask(attention_mask, hidden_states.dtype)
        cross_mask = _additive_mask(encoder_attention_mask, hidden_states.dtype)
        all_hidden, all_self, all_cross, intermediate = [inputs_embeds], [], [], []
        for i, layer in enumerate(self.layers):
            hidden_states, self_weights, cross_weights = layer(
                hidden_states, self_mask, spatial_position_embeddings, query_position_embeddings, encoder_hidden_states, cross_mask, training=training
            )
            if i < len(self.layers) - 1:  # hidden states: each layer's own output, the last one normalised
                all_hidden.append(hidden_states)
            if self.auxiliary_loss:  # as in PyTorch (Transformers), the normalised output also feeds the next layer
                hidden_states = self.layernorm(hidden_states)
                intermediate.append(hidden_states)
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
            tf.stack(intermediate) if self.auxiliary_loss else None,  # (L, B, Q, D)
        )


# --- segmentation head ------------------------------------------------------------------------------


class TFDetrMHAttentionMap(keras.layers.Layer):
    """Attention of each query over the encoder's feature map, per head, without values: (B, Q, nh, H, W).

    The softmax runs over heads and positions together, as in the original DETR.
    """

    def __init__(self, query_dim: int, hidden_dim: int, num_heads: int, xavier_std: float = 1.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.query_dim, self.hidden_dim, self.num_heads = query_dim, hidden_dim, num_heads
        init = keras.initializers.VarianceScaling(scale=xavier_std**2, mode="fan_avg", distribution="uniform")
        self.q_linear = keras.layers.Dense(hidden_dim, kernel_initializer=init, name="q_linear")
        self.k_linear = keras.layers.Dense(hidden_dim, kernel_initializer=init, name="k_linear")
        self.normalize_fact = float(hidden_dim / num_heads) ** -0.5

    def build(self, input_shape: Any = None) -> None:
        self.q_linear.build((None, None, self.query_dim))
        self.k_linear.build((None, None, self.query_dim))

    def call(self, q: tf.Tensor, k: tf.Tensor, attention_mask: tf.Tensor | None = None) -> tf.Tensor:
        """``q`` (B, Q, D) decoder output, ``k`` (B, H, W, D) encoder memory, ``attention_mask`` additive (B, 1, 1, H, W)."""
        head_dim = self.hidden_dim // self.num_heads
        batch_size, num_queries = shape_list(q)[:2]
        height, width = shape_list(k)[1:3]
        q = tf.reshape(self.q_linear(q), (batch_size, num_queries, self.num_heads, head_dim))  # (B, Q, nh, hd)
        k = tf.reshape(self.k_linear(k), (batch_size, height, width, self.num_heads, head_dim))  # a 1x1 conv: (B, H, W, nh, hd)
        weights = tf.einsum("bqnc,bhwnc->bqnhw", q * self.normalize_fact, k)
        if attention_mask is not None:
            weights = weights + attention_mask
        flat = tf.nn.softmax(tf.reshape(weights, (batch_size, num_queries, -1)), axis=-1)
        return tf.reshape(flat, tf.shape(weights))


class TFDetrMaskHeadSmallConv(keras.layers.Layer):
    """Per-query mask logits: encoder features + attention maps, upsampled through three FPN levels.

    ``lay1``..``lay5``, ``gn1``..``gn5``, ``adapter1``..``adapter3`` and ``out_lay`` are the checkpoint names.
    """

    def __init__(self, dim: int, fpn_dims: list[int], context_dim: int, activation_function: str = "relu", **kwargs: Any):
        super().__init__(**kwargs)
        if dim % 8:
            raise ValueError(
                f"The DETR mask head takes d_model + encoder_attention_heads channels, which must be divisible by 8 "
                f"(GroupNorm with 8 groups); got {dim}."
            )
        self.dim, self.fpn_dims = dim, list(fpn_dims)
        self.inter = [dim, context_dim // 2, context_dim // 4, context_dim // 8, context_dim // 16]
        init = keras.initializers.VarianceScaling(scale=1.0, mode="fan_in", distribution="uniform")  # kaiming_uniform_(a=1)
        self.convs = [TFDetrConv2D(dim, 3, padding=1, kernel_initializer=init, name="lay1")]
        self.norms = [TFDetrGroupNorm(min(8, dim), name="gn1")]
        for n in range(2, 6):  # lay2..lay5 halve the channels at each step
            self.convs.append(TFDetrConv2D(self.inter[n - 1], 3, padding=1, kernel_initializer=init, name=f"lay{n}"))
            self.norms.append(TFDetrGroupNorm(min(8, self.inter[n - 1]), name=f"gn{n}"))
        self.out_lay = TFDetrConv2D(1, 3, padding=1, kernel_initializer=init, name="out_lay")
        self.adapters = [TFDetrConv2D(self.inter[n], 1, kernel_initializer=init, name=f"adapter{n}") for n in range(1, 4)]
        self.activation = get_tf_activation(activation_function)

    def build(self, input_shape: Any = None) -> None:
        ins = [self.dim, self.dim, self.inter[1], self.inter[2], self.inter[3]]
        for conv, norm, c_in, c_out in zip(self.convs, self.norms, ins, [self.dim, *self.inter[1:]]):
            conv.build((None, None, None, c_in))
            norm.build((None, None, None, c_out))
        self.out_lay.build((None, None, None, self.inter[4]))
        for adapter, c_in in zip(self.adapters, self.fpn_dims):
            adapter.build((None, None, None, c_in))

    def _block(self, n: int, x: tf.Tensor) -> tf.Tensor:
        return self.activation(self.norms[n - 1](self.convs[n - 1](x)))

    def call(self, x: tf.Tensor, bbox_mask: tf.Tensor, fpns: list[tf.Tensor]) -> tf.Tensor:
        """``x`` (B, H, W, D), ``bbox_mask`` (B, Q, nh, H, W), ``fpns`` backbone maps, coarse to fine -> (B*Q, H', W', 1)."""
        num_queries = shape_list(bbox_mask)[1]

        def per_query(t: tf.Tensor) -> tf.Tensor:  # (B, h, w, C) -> (B*Q, h, w, C)
            shape = shape_list(t)
            t = tf.broadcast_to(t[:, None], (shape[0], num_queries, *shape[1:]))
            return tf.reshape(t, (-1, *shape[1:]))

        bbox_shape = shape_list(bbox_mask)
        attention = tf.transpose(tf.reshape(bbox_mask, (-1, *bbox_shape[2:])), (0, 2, 3, 1))  # (B*Q, H, W, nh)
        x = tf.concat([per_query(x), attention], axis=-1)
        x = self._block(2, self._block(1, x))
        for n, fpn in enumerate(fpns, start=1):
            fpn = per_query(self.adapters[n - 1](fpn))  # the 1x1 adapter commutes with the expansion
            size = tf.shape(fpn)[1:3]
            x = self._block(n + 2, fpn + resize_nearest(x, (size[0], size[1])))
        return self.out_lay(x)


# --- weight names of other checkpoints ------------------------------------------------------------------


def _move_tf_detr_scope(checkpoint: dict[str, np.ndarray], ours: str) -> dict[str, np.ndarray]:
    """TF names of another DETR class: ``model/*`` (TFDetrModel, detection) <-> ``detr/model/*`` (segmentation)."""
    theirs = "detr/model/" if any(k.startswith("detr/") for k in checkpoint) else "model/"
    if theirs == ours:
        return checkpoint
    their_head, our_head = theirs[: -len("model/")], ours[: -len("model/")]
    moved = {}
    for key, array in checkpoint.items():
        if key.startswith(theirs):
            key = ours + key[len(theirs) :]
        elif key.startswith(their_head) and key.split("/", 1)[0] != "model":
            key = our_head + key[len(their_head) :]
        moved[key] = array
    return moved


# --- models ------------------------------------------------------------------------------------------------


@dataclass
class _Features:
    """What the segmentation head needs besides the model's output."""

    backbone: list[tuple[tf.Tensor, tf.Tensor]]
    projected: tf.Tensor  # (B, H, W, D)
    mask: tf.Tensor  # (B, H, W) bool, True on real pixels


class TFDetrMainLayer(keras.layers.Layer):
    """Backbone, 1x1 projection to d_model, position embeddings, encoder, and decoder over ``num_queries`` learned queries."""

    def __init__(self, config: DetrConfig, **kwargs: Any):
        super().__init__(**kwargs)
        self.config = config
        self.backbone = TFDetrConvModel(config, name="backbone")
        if config.position_embedding_type == "sine":
            self.position_embedding = None
        elif config.position_embedding_type == "learned":
            self.position_embedding = TFDetrLearnedPositionEmbedding(config.d_model // 2, name="position_embedding")
        else:
            raise ValueError(f"position_embedding_type must be 'sine' or 'learned', got {config.position_embedding_type!r}.")
        init = get_initializer(config.init_std)
        self.query_position_embeddings = keras.layers.Embedding(
            config.num_queries, config.d_model, embeddings_initializer=init, name="query_position_embeddings"
        )
        self.input_projection = TFDetrConv2D(config.d_model, 1, kernel_initializer=init, name="input_projection")
        self.encoder = TFDetrEncoder(config, name="encoder")
        self.decoder = TFDetrDecoder(config, name="decoder")

    @property
    def intermediate_channel_sizes(self) -> list[int]:
        return self.backbone.conv_encoder.intermediate_channel_sizes

    def build(self, input_shape: Any = None) -> None:
        config = self.config
        spec = config.resnet
        # The ResNet's variables depend on input channels only: build it on a small image.
        self.backbone(tf.zeros((1, 64, 64, spec.num_channels)), tf.ones((1, 64, 64)))
        if self.position_embedding is not None:
            self.position_embedding.build(None)
        self.query_position_embeddings.build((None,))
        self.input_projection.build((None, None, None, self.intermediate_channel_sizes[-1]))
        self.encoder.build(None)
        self.decoder.build(None)

    def call(
        self, pixel_values=None, pixel_mask=None, decoder_attention_mask=None, encoder_outputs=None, inputs_embeds=None,
        decoder_inputs_embeds=None, output_attentions=None, output_hidden_states=None, training=False,
    ) -> tuple[TFDetrModelOutput, _Features | None]:
        config = self.config
        output_attentions = output_attentions if output_attentions is not None else getattr(config, "output_attentions", False)
        output_hidden_states = output_hidden_states if output_hidden_states is not None else getattr(config, "output_hidden_states", False)
        features = None
        if inputs_embeds is None:
            if pixel_values is None:
                raise ValueError("TFDetrModel needs pixel_values (B, C, H, W), or inputs_embeds (B, S, d_model) to bypass the backbone.")
            pixel_values = tf.convert_to_tensor(pixel_values, dtype=self.compute_dtype)
            if len(pixel_values.shape) != 4:
                raise ValueError(f"pixel_values must be (batch, channels, height, width), got shape {tuple(pixel_values.shape)}.")
            batch_size, _, height, width = shape_list(pixel_values)
            if pixel_mask is None:
                pixel_mask = tf.ones((batch_size, height, width), dtype=tf.int32)
            pixel_values = tf.transpose(pixel_values, (0, 2, 3, 1))  # NCHW -> NHWC
            backbone_features = self.backbone(pixel_values, pixel_mask)
            feature_map, mask = backbone_features[-1]  # (B, H, W, C), (B, H, W)
            projected = self.input_projection(feature_map)  # (B, H, W, D)
            fh, fw = shape_list(feature_map)[1:3]
            flat_features = tf.reshape(projected, (batch_size, -1, config.d_model))  # (B, S, D)
            spatial_pos = tf.reshape(self._position(batch_size, fh, fw, mask), (batch_size, -1, config.d_model))
            flat_mask = tf.reshape(mask, (batch_size, -1))
            features = _Features(backbone_features, projected, mask)
        else:
            inputs_embeds = tf.convert_to_tensor(inputs_embeds)
            batch_size, seq_len = shape_list(inputs_embeds)[:2]
            side = int(seq_len**0.5)  # as Transformers: the feature map is taken to be square
            flat_features = inputs_embeds
            spatial_pos = tf.reshape(self._position(batch_size, side, side, None), (batch_size, -1, config.d_model))
            if pixel_mask is not None:
                flat_mask = tf.reshape(resize_nearest(tf.cast(pixel_mask, tf.float32), (side, side)) > 0, (batch_size, -1))
            else:
                flat_mask = tf.ones((batch_size, seq_len), dtype=tf.int32)

        if encoder_outputs is None:
            encoder_last, encoder_hidden, encoder_attentions = self.encoder(
                flat_features, flat_mask, spatial_pos,
                output_attentions=output_attentions, output_hidden_states=output_hidden_states, training=training,
            )
        else:
            encoder_last = encoder_outputs[0]
            encoder_hidden = encoder_outputs[1] if len(encoder_outputs) > 1 else None
            encoder_attentions = encoder_outputs[2] if len(encoder_outputs) > 2 else None

        query_table = self.query_position_embeddings(tf.range(config.num_queries))  # (Q, D)
        query_pos = tf.tile(query_table[None], (batch_size, 1, 1))  # (B, Q, D)
        queries = decoder_inputs_embeds if decoder_inputs_embeds is not None else tf.zeros_like(query_pos)
        last, hidden, self_attentions, cross_attentions, intermediate = self.decoder(
            queries, decoder_attention_mask, encoder_last, flat_mask, spatial_pos, query_pos,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, training=training,
        )
        outputs = tf_output_class(TFDetrModelOutput)(
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

    def _position(self, batch_size: Any, height: Any, width: Any, mask: tf.Tensor | None) -> tf.Tensor:
        if self.position_embedding is None:
            return sine_position_embedding(batch_size, height, width, mask, self.config.d_model // 2)
        return self.position_embedding.embed(batch_size, height, width)


class TFDetrMLPPredictionHead(keras.layers.Layer):
    """A small MLP (ReLU between layers): the box head, ``layers_._0``..``layers_._{n-1}``."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int, init_std: float = 0.02, **kwargs: Any):
        super().__init__(**kwargs)
        self.sizes = [input_dim] + [hidden_dim] * (num_layers - 1)
        outs = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = [keras.layers.Dense(k, kernel_initializer=get_initializer(init_std), name=_list_name("layers", i)) for i, k in enumerate(outs)]

    def build(self, input_shape: Any = None) -> None:
        for layer, n in zip(self.layers, self.sizes):
            layer.build((None, None, n))

    def call(self, x: tf.Tensor) -> tf.Tensor:
        for i, layer in enumerate(self.layers):
            x = tf.nn.relu(layer(x)) if i < len(self.layers) - 1 else layer(x)
        return x


class TFDetrPreTrainedModel(TFPreTrainedModel):
    config_class = DetrConfig
    base_model_prefix = "model"
    main_input_name = "pixel_values"
    _keys_to_ignore_on_load_unexpected = [r"num_batches_tracked$"]
    _detr_model_path = "model."  # where the DetrModel's weights sit, in PyTorch names

    @property
    def dummy_inputs(self) -> dict[str, tf.Tensor]:
        return {"pixel_values": tf.zeros((1, self.config.resnet.num_channels, 64, 64))}

    def _load_weights(self, kind: str, checkpoint: dict[str, np.ndarray], ignore_mismatched_sizes: bool, initialize_rest: bool = False) -> Any:
        if kind == "pt":
            # TFDetrModel, like the detection model, keeps its weights under "model." (its base prefix).
            target = "DetrForSegmentation" if self._detr_model_path == "detr.model." else "DetrForObjectDetection"
            checkpoint = rename_checkpoint_keys(checkpoint, target, self.config.resnet.kind)
        elif kind == "tf":
            checkpoint = _move_tf_detr_scope(checkpoint, self._detr_model_path.replace(".", "/"))
        return super()._load_weights(kind, checkpoint, ignore_mismatched_sizes, initialize_rest)

    def _initial_value(self, name: str, shape: tuple[int, ...], dtype: Any) -> Any:
        leaf = name.rsplit("/", 1)[-1].removesuffix(":0")
        if "row_embeddings" in name or "column_embeddings" in name:
            return keras.initializers.RandomUniform(0.0, 1.0)(shape, dtype=dtype)
        if leaf == "kernel":
            return keras.initializers.RandomNormal(stddev=self.config.init_std)(shape, dtype=dtype)
        return super()._initial_value(name, shape, dtype)


def _finish(output: ModelOutput, return_dict: bool | None, config: DetrConfig) -> ModelOutput | tuple:
    return_dict = return_dict if return_dict is not None else getattr(config, "use_return_dict", True)
    return output if return_dict else output.to_tuple()


def _decoder_encoder_fields(outputs: TFDetrModelOutput) -> dict[str, Any]:
    return {
        "last_hidden_state": outputs.last_hidden_state,
        "decoder_hidden_states": outputs.decoder_hidden_states,
        "decoder_attentions": outputs.decoder_attentions,
        "cross_attentions": outputs.cross_attentions,
        "encoder_last_hidden_state": outputs.encoder_last_hidden_state,
        "encoder_hidden_states": outputs.encoder_hidden_states,
        "encoder_attentions": outputs.encoder_attentions,
    }


class TFDetrModel(TFDetrPreTrainedModel):
    """The DETR encoder-decoder without heads: (B, 3, H, W) images to (B, Q, D) query states."""

    def __init__(self, config: DetrConfig, *inputs: Any, **kwargs: Any):
        super().__init__(config, *inputs, **kwargs)
        self.model = TFDetrMainLayer(config, name="model")

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.model.build(None)

    def freeze_backbone(self) -> None:
        self.model.backbone.conv_encoder.model.trainable = False

    def unfreeze_backbone(self) -> None:
        self.model.backbone.conv_encoder.model.trainable = True

    @unpack_inputs
    def call(
        self, pixel_values=None, pixel_mask=None, decoder_attention_mask=None, encoder_outputs=None, inputs_embeds=None,
        decoder_inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, training=False,
    ):
        """``pixel_values`` (B, 3, H, W); ``pixel_mask`` (B, H, W), 1 on real pixels, 0 on padding (default: all real)."""
        outputs, _ = self.model(
            pixel_values, pixel_mask=pixel_mask, decoder_attention_mask=decoder_attention_mask, encoder_outputs=encoder_outputs,
            inputs_embeds=inputs_embeds, decoder_inputs_embeds=decoder_inputs_embeds,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, training=training,
        )
        return _finish(outputs, return_dict, self.config)


class TFDetrForObjectDetection(TFDetrPreTrainedModel):
    """DETR with a class head (``num_labels`` + "no object") and a box head (sigmoid cx, cy, w, h)."""

    def __init__(self, config: DetrConfig, *inputs: Any, **kwargs: Any):
        super().__init__(config, *inputs, **kwargs)
        self.model = TFDetrMainLayer(config, name="model")
        init = get_initializer(config.init_std)
        self.class_labels_classifier = keras.layers.Dense(config.num_labels + 1, kernel_initializer=init, name="class_labels_classifier")
        self.bbox_predictor = TFDetrMLPPredictionHead(config.d_model, config.d_model, 4, 3, config.init_std, name="bbox_predictor")

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.model.build(None)
        self.class_labels_classifier.build((None, None, self.config.d_model))
        self.bbox_predictor.build(None)

    def _heads(self, hidden: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return self.class_labels_classifier(hidden), tf.sigmoid(self.bbox_predictor(hidden))

    @unpack_inputs
    def call(
        self, pixel_values=None, pixel_mask=None, decoder_attention_mask=None, encoder_outputs=None, inputs_embeds=None,
        decoder_inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None, training=False,
    ):
        """``labels``: one dict per image with ``class_labels`` (N,) and ``boxes`` (N, 4), normalised cx, cy, w, h."""
        outputs, _ = self.model(
            pixel_values, pixel_mask=pixel_mask, decoder_attention_mask=decoder_attention_mask, encoder_outputs=encoder_outputs,
            inputs_embeds=inputs_embeds, decoder_inputs_embeds=decoder_inputs_embeds,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, training=training,
        )
        logits, pred_boxes = self._heads(outputs.last_hidden_state)
        loss = loss_dict = auxiliary_outputs = None
        if labels is not None:
            outputs_class = outputs_coord = None
            if self.config.auxiliary_loss:
                outputs_class, outputs_coord = self._heads(outputs.intermediate_hidden_states)
            loss, loss_dict, auxiliary_outputs = detr_loss(self.config, logits, pred_boxes, labels, None, outputs_class, outputs_coord)
        result = tf_output_class(TFDetrObjectDetectionOutput)(
            loss=loss, loss_dict=loss_dict, logits=logits, pred_boxes=pred_boxes, auxiliary_outputs=auxiliary_outputs,
            **_decoder_encoder_fields(outputs),
        )
        return _finish(result, return_dict, self.config)


class TFDetrForSegmentation(TFDetrPreTrainedModel):
    """DETR detection (``detr``) plus a mask head: attention maps of each query, refined with backbone features."""

    _detr_model_path = "detr.model."

    def __init__(self, config: DetrConfig, *inputs: Any, **kwargs: Any):
        super().__init__(config, *inputs, **kwargs)
        self.detr = TFDetrForObjectDetectionLayer(config, name="detr")
        hidden_size, num_heads = config.d_model, config.encoder_attention_heads
        channels = self.detr.model.intermediate_channel_sizes
        if len(channels) < 4:
            raise ValueError(
                f"TFDetrForSegmentation needs 4 backbone feature maps (FPN levels + the last one), got {len(channels)}: "
                f"set the backbone's out_features to ['stage1', 'stage2', 'stage3', 'stage4']."
            )
        self.mask_head = TFDetrMaskHeadSmallConv(
            hidden_size + num_heads, channels[::-1][-3:], hidden_size, config.activation_function, name="mask_head"
        )
        self.bbox_attention = TFDetrMHAttentionMap(hidden_size, hidden_size, num_heads, config.init_xavier_std, name="bbox_attention")

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.detr.build(None)
        self.mask_head.build(None)
        self.bbox_attention.build(None)

    @unpack_inputs
    def call(
        self, pixel_values=None, pixel_mask=None, decoder_attention_mask=None, encoder_outputs=None, inputs_embeds=None,
        decoder_inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None, training=False,
    ):
        """``labels`` also need ``masks`` (N, H, W) per image. ``inputs_embeds`` cannot be used: masks need the backbone."""
        if inputs_embeds is not None or pixel_values is None:
            raise ValueError(
                "TFDetrForSegmentation needs pixel_values: its mask head uses the backbone's feature maps, so inputs_embeds cannot replace them."
            )
        config = self.config
        outputs, features = self.detr.model(
            pixel_values, pixel_mask=pixel_mask, decoder_attention_mask=decoder_attention_mask, encoder_outputs=encoder_outputs,
            decoder_inputs_embeds=decoder_inputs_embeds,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, training=training,
        )
        sequence_output = outputs.last_hidden_state  # (B, Q, D)
        logits, pred_boxes = self.detr.heads(sequence_output)

        batch_size = shape_list(sequence_output)[0]
        height, width = shape_list(features.projected)[1:3]
        memory = tf.reshape(outputs.encoder_last_hidden_state, (batch_size, height, width, config.d_model))  # (B, H, W, D)
        attention_mask = tf.where(features.mask, tf.zeros((), memory.dtype), tf.fill((), memory.dtype.min))[:, None, None]  # (B, 1, 1, H, W)
        bbox_mask = self.bbox_attention(sequence_output, memory, attention_mask=attention_mask)  # (B, Q, nh, H, W)
        fpns = [features.backbone[2][0], features.backbone[1][0], features.backbone[0][0]]  # coarse to fine
        seg_masks = self.mask_head(features.projected, bbox_mask, fpns)  # (B*Q, H', W', 1)
        mask_shape = shape_list(seg_masks)
        pred_masks = tf.reshape(seg_masks, (batch_size, config.num_queries, mask_shape[1], mask_shape[2]))

        loss = loss_dict = auxiliary_outputs = None
        if labels is not None:
            outputs_class = outputs_coord = None
            if config.auxiliary_loss:
                outputs_class, outputs_coord = self.detr.heads(outputs.intermediate_hidden_states)
            loss, loss_dict, auxiliary_outputs = detr_loss(config, logits, pred_boxes, labels, pred_masks, outputs_class, outputs_coord)
        result = tf_output_class(TFDetrSegmentationOutput)(
            loss=loss, loss_dict=loss_dict, logits=logits, pred_boxes=pred_boxes, pred_masks=pred_masks,
            auxiliary_outputs=auxiliary_outputs, **_decoder_encoder_fields(outputs),
        )
        return _finish(result, return_dict, config)


class TFDetrForObjectDetectionLayer(keras.layers.Layer):
    """The detection model as a layer, ``detr`` inside :class:`TFDetrForSegmentation` (PyTorch's ``detr.*`` names)."""

    def __init__(self, config: DetrConfig, **kwargs: Any):
        super().__init__(**kwargs)
        self.config = config
        self.model = TFDetrMainLayer(config, name="model")
        init = get_initializer(config.init_std)
        self.class_labels_classifier = keras.layers.Dense(config.num_labels + 1, kernel_initializer=init, name="class_labels_classifier")
        self.bbox_predictor = TFDetrMLPPredictionHead(config.d_model, config.d_model, 4, 3, config.init_std, name="bbox_predictor")

    def build(self, input_shape: Any = None) -> None:
        self.model.build(None)
        self.class_labels_classifier.build((None, None, self.config.d_model))
        self.bbox_predictor.build(None)

    def heads(self, hidden: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return self.class_labels_classifier(hidden), tf.sigmoid(self.bbox_predictor(hidden))


# --- the set loss (TensorFlow maths, scipy matching) ------------------------------------------------------


def center_to_corners(boxes: Any) -> Any:
    """(center_x, center_y, width, height) -> (x0, y0, x1, y1); numpy in, numpy out, tensor in, tensor out."""
    stack = np.stack if isinstance(boxes, np.ndarray) else tf.stack
    cx, cy, w, h = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    return stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], -1)


def _matched_giou(boxes1: tf.Tensor, boxes2: tf.Tensor) -> tf.Tensor:
    """GIoU of matched pairs of corner boxes, (M, 4) each -> (M,) (the diagonal of PyTorch's pairwise GIoU)."""
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    inter = tf.reduce_prod(tf.maximum(tf.minimum(boxes1[:, 2:], boxes2[:, 2:]) - tf.maximum(boxes1[:, :2], boxes2[:, :2]), 0.0), -1)
    union = area1 + area2 - inter
    enclosing = tf.reduce_prod(tf.maximum(tf.maximum(boxes1[:, 2:], boxes2[:, 2:]) - tf.minimum(boxes1[:, :2], boxes2[:, :2]), 0.0), -1)
    return inter / union - (enclosing - union) / enclosing


def _as_numpy_targets(labels: Any, batch_size: int, with_masks: bool) -> list[dict[str, np.ndarray]]:
    check_labels(labels, batch_size, with_masks)
    targets = []
    for target in labels:
        converted = {
            "class_labels": np.asarray(target["class_labels"]).astype(np.int64).reshape(-1),
            "boxes": np.asarray(target["boxes"], dtype=np.float32).reshape(-1, 4),
        }
        if with_masks:
            converted["masks"] = np.asarray(target["masks"], dtype=np.float32)
        targets.append(converted)
    return targets


def _gather_queries(tensor: tf.Tensor, indices: list[tuple[np.ndarray, np.ndarray]]) -> tf.Tensor:
    """The matched queries' rows of a (B, Q, ...) tensor, image by image: (M, ...)."""
    pairs = np.concatenate([np.stack([np.full_like(src, b), src], -1) for b, (src, _) in enumerate(indices)]).reshape(-1, 2)
    return tf.gather_nd(tensor, pairs)


def _sigmoid_focal_loss(inputs: tf.Tensor, targets: tf.Tensor, num_boxes: float, alpha: float = 0.25, gamma: float = 2) -> tf.Tensor:
    prob = tf.sigmoid(inputs)
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=inputs)
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return tf.reduce_sum(tf.reduce_mean(loss, 1)) / num_boxes


def _dice_loss(inputs: tf.Tensor, targets: tf.Tensor, num_boxes: float) -> tf.Tensor:
    inputs = tf.sigmoid(inputs)
    numerator = 2 * tf.reduce_sum(inputs * targets, 1)
    denominator = tf.reduce_sum(inputs, -1) + tf.reduce_sum(targets, -1)
    return tf.reduce_sum(1 - (numerator + 1) / (denominator + 1)) / num_boxes


def _set_losses(config: DetrConfig, logits, pred_boxes, pred_masks, targets, num_boxes: float) -> dict[str, tf.Tensor]:
    """The PyTorch criterion's ``labels``, ``boxes``, ``cardinality`` (and ``masks``) terms for one set of predictions."""
    indices = hungarian_match(config, logits.numpy(), pred_boxes.numpy(), targets)
    batch_size, num_queries, num_classes_plus_one = shape_list(logits)
    losses = {}

    # Classification: matched queries get their target's class, the rest "no object" (weight eos_coefficient).
    target_classes = np.full((batch_size, num_queries), config.num_labels, dtype=np.int64)
    for b, ((src, tgt), target) in enumerate(zip(indices, targets)):
        target_classes[b, src] = target["class_labels"][tgt]
    class_weight = np.ones(config.num_labels + 1, dtype=np.float32)
    class_weight[-1] = config.eos_coefficient
    weights = tf.constant(class_weight[target_classes], dtype=logits.dtype)  # (B, Q)
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.constant(target_classes), logits=logits)
    losses["loss_ce"] = tf.reduce_sum(nll * weights) / tf.reduce_sum(weights)

    # Boxes: L1 and GIoU of the matched pairs.
    source = _gather_queries(pred_boxes, indices)  # (M, 4)
    target = tf.constant(np.concatenate([t["boxes"][j] for t, (_, j) in zip(targets, indices)]).reshape(-1, 4), dtype=source.dtype)
    losses["loss_bbox"] = tf.reduce_sum(tf.abs(source - target)) / num_boxes
    losses["loss_giou"] = tf.reduce_sum(1 - _matched_giou(center_to_corners(source), center_to_corners(target))) / num_boxes

    # Cardinality: |queries not predicting "no object" - targets|, for logging only.
    predicted = tf.reduce_sum(tf.cast(tf.argmax(logits, -1) != num_classes_plus_one - 1, tf.float32), 1)
    target_lengths = tf.constant([float(len(t["class_labels"])) for t in targets])
    losses["cardinality_error"] = tf.stop_gradient(tf.reduce_mean(tf.abs(predicted - target_lengths)))

    if pred_masks is not None:
        # Predicted masks are upsampled (bilinear) to the targets' padded size, then focal + dice.
        source = _gather_queries(pred_masks, indices)  # (M, h, w)
        height, width = max(t["masks"].shape[-2] for t in targets), max(t["masks"].shape[-1] for t in targets)
        # Every image's masks zero-padded at the bottom/right to the batch's largest size.
        padded = [
            np.pad(t["masks"], ((0, 0), (0, height - t["masks"].shape[-2]), (0, width - t["masks"].shape[-1])))[j]
            for t, (_, j) in zip(targets, indices)
        ]
        target = tf.constant(np.concatenate(padded).reshape(-1, height * width), dtype=source.dtype)
        source = tf.image.resize(source[..., None], (height, width), method="bilinear", antialias=False)[..., 0]
        source = tf.reshape(source, (-1, height * width))
        losses["loss_mask"] = _sigmoid_focal_loss(source, target, num_boxes)
        losses["loss_dice"] = _dice_loss(source, target, num_boxes)
    return losses


def detr_loss(
    config: DetrConfig,
    logits: tf.Tensor,
    pred_boxes: tf.Tensor,
    labels: Any,
    pred_masks: tf.Tensor | None = None,
    outputs_class: tf.Tensor | None = None,
    outputs_coord: tf.Tensor | None = None,
) -> tuple[tf.Tensor, dict[str, tf.Tensor], list[dict[str, tf.Tensor]] | None]:
    """Total loss, the dict of every term, and the auxiliary outputs; as :func:`polyformers_detr.loss_detr.detr_loss`.

    Runs eagerly: the matching reads the predictions as numpy.
    """
    if not tf.executing_eagerly():
        raise RuntimeError(
            "DETR's loss matches predictions to targets with scipy, which needs eager execution: "
            "compute it outside tf.function (train with tf.GradientTape in eager mode)."
        )
    with_masks = pred_masks is not None
    targets = _as_numpy_targets(labels, shape_list(logits)[0], with_masks)
    num_boxes = max(float(sum(len(t["class_labels"]) for t in targets)), 1.0)
    loss_dict = _set_losses(config, logits, pred_boxes, pred_masks, targets, num_boxes)
    auxiliary_outputs = None
    if config.auxiliary_loss:
        if outputs_class is None or outputs_coord is None:
            raise ValueError("config.auxiliary_loss is set: pass the per-layer outputs_class and outputs_coord.")
        auxiliary_outputs = [{"logits": outputs_class[i], "pred_boxes": outputs_coord[i]} for i in range(shape_list(outputs_class)[0] - 1)]
        for i, auxiliary in enumerate(auxiliary_outputs):  # the mask head runs on the last layer only
            terms = _set_losses(config, auxiliary["logits"], auxiliary["pred_boxes"], None, targets, num_boxes)
            loss_dict.update({f"{k}_{i}": v for k, v in terms.items()})

    weight_dict = {"loss_ce": 1, "loss_bbox": config.bbox_loss_coefficient, "loss_giou": config.giou_loss_coefficient}
    if with_masks:
        weight_dict.update(loss_mask=config.mask_loss_coefficient, loss_dice=config.dice_loss_coefficient)
    if config.auxiliary_loss:
        weight_dict.update({f"{k}_{i}": v for i in range(config.decoder_layers - 1) for k, v in list(weight_dict.items())})
    loss = tf.add_n([loss_dict[k] * weight_dict[k] for k in loss_dict if k in weight_dict])
    return loss, loss_dict, auxiliary_outputs


__all__ = ["TFDetrForObjectDetection", "TFDetrForSegmentation", "TFDetrModel", "TFDetrPreTrainedModel"]
