"""``DetrConfig``: the configuration of DETR object-detection / segmentation models, as in Transformers.

Normalized backbone view (what modeling code should read, whichever Transformers version wrote the
file):

* ``config.backbone_kind`` -- ``"timm"`` (a timm ResNet, e.g. facebook/detr-resnet-50) or
  ``"native"`` (Transformers' own ``ResNetBackbone``, described by a ``resnet`` ``backbone_config``).
* ``config.resnet`` -- a frozen :class:`DetrResNetSpec` with ``kind``, ``name`` (timm model name or
  ``None``), ``num_channels``, ``embedding_size``, ``hidden_sizes``, ``depths``, ``layer_type``
  (``"basic"``/``"bottleneck"``), ``hidden_act``, ``downsample_in_first_stage``,
  ``downsample_in_bottleneck``, ``out_indices`` (stage numbers, 0 = stem, 1..4 = stages),
  ``out_features`` (``"stem"``, ``"stage1"``..), ``dilation`` (last stage dilated instead of strided,
  output stride 16) and ``use_pretrained_backbone``. Raises ``ConfigError`` for backbones that are
  not ResNets (the view is computed on access; the config itself still loads and saves).

On disk the Transformers 4 layout is written (``use_timm_backbone``, ``backbone``,
``backbone_config`` = ``null`` for timm or a ``resnet`` dict, ``dilation``), which Transformers 4
and 5 both read; the Transformers 5 layout (``backbone_config`` of model type ``timm_backbone``) is
read and converted.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from polyformers.configuration_utils import PretrainedConfig
from polyformers.errors import ConfigError
from polyformers.layers.resnet_spec import TIMM_RESNETS, WIDTHS, BlockSchedule, ResNetSpec, resnet_block_schedule  # noqa: F401  (re-exported)

POSITION_EMBEDDING_TYPES = ("sine", "learned")

# timm ResNet names -> (layer_type, depths), and the widths that follow from the layer type: shared
# with other vision plugins in core.
_TIMM_RESNETS = TIMM_RESNETS
_WIDTHS = WIDTHS
_TIMM_OUT_INDICES = [1, 2, 3, 4]
_STAGE_NAMES = ["stem", "stage1", "stage2", "stage3", "stage4"]


@dataclasses.dataclass(frozen=True)
class DetrResNetSpec:
    """The ResNet backbone of a DETR model, whatever the file format that described it."""

    kind: str  # "timm" or "native"
    name: str | None
    num_channels: int
    embedding_size: int
    hidden_sizes: tuple[int, ...]
    depths: tuple[int, ...]
    layer_type: str  # "basic" or "bottleneck"
    hidden_act: str
    downsample_in_first_stage: bool
    downsample_in_bottleneck: bool
    out_indices: tuple[int, ...]  # 0 = stem, 1..len(depths) = stages
    out_features: tuple[str, ...]
    dilation: bool
    use_pretrained_backbone: bool

    def to_resnet_spec(self) -> ResNetSpec:
        """The core backbone spec (:class:`polyformers.layers.resnet_spec.ResNetSpec`) the models build from.

        Raises ``ValueError`` for ``dilation`` with the native layout (Transformers' ResNet has none).
        """
        return ResNetSpec(
            layout=self.kind,
            num_channels=self.num_channels,
            embedding_size=self.embedding_size,
            hidden_sizes=self.hidden_sizes,
            depths=self.depths,
            layer_type=self.layer_type,
            hidden_act=self.hidden_act,
            downsample_in_first_stage=self.downsample_in_first_stage,
            downsample_in_bottleneck=self.downsample_in_bottleneck,
            out_indices=self.out_indices,
            dilation=self.dilation,
        )


# The per-block (stride, first_dilation, dilation) schedule moved to core with the backbone
# (polyformers.layers.resnet_spec); ``resnet_block_schedule`` and ``BlockSchedule`` stay importable here.


def default_resnet_backbone_config(num_channels: int = 3) -> dict[str, Any]:
    """The ResNet-50 ``backbone_config`` Transformers uses when ``use_timm_backbone=False``."""
    return {
        "model_type": "resnet",
        "num_channels": num_channels,
        "embedding_size": 64,
        "hidden_sizes": [256, 512, 1024, 2048],
        "depths": [3, 4, 6, 3],
        "layer_type": "bottleneck",
        "hidden_act": "relu",
        "downsample_in_first_stage": False,
        "downsample_in_bottleneck": False,
        "out_features": ["stage4"],
        "out_indices": [4],
        "stage_names": list(_STAGE_NAMES),
    }


class DetrConfig(PretrainedConfig):
    """Configuration of a DETR model; the defaults give facebook/detr-resnet-50.

    Args:
        use_timm_backbone: the backbone is a timm ResNet named by ``backbone`` (True), or
            Transformers' ResNet described by ``backbone_config`` (False).
        backbone_config: a ``resnet`` config dict (or config object with ``to_dict``) for the
            native backbone. A Transformers 5 ``timm_backbone`` dict is converted to the timm
            fields. ``None`` with ``use_timm_backbone=False`` gives ResNet-50 with ``out_features=["stage4"]``.
        num_channels: input image channels.
        num_queries: object queries, the most objects one image can yield.
        d_model: width of the Transformer (alias ``hidden_size``).
        encoder_layers / decoder_layers: Transformer depth (``num_hidden_layers`` = encoder_layers).
        encoder_attention_heads / decoder_attention_heads: heads (``num_attention_heads`` = encoder's).
        encoder_ffn_dim / decoder_ffn_dim: width of the feed-forward blocks.
        encoder_layerdrop / decoder_layerdrop: LayerDrop probabilities.
        activation_function: activation of the feed-forward blocks.
        dropout / attention_dropout / activation_dropout: dropout rates.
        init_std / init_xavier_std: initialiser std and Xavier gain of the mask-head attention map.
        auxiliary_loss: add the losses of every decoder layer.
        position_embedding_type: ``"sine"`` or ``"learned"``.
        backbone: timm model name (``"resnet50"``) when ``use_timm_backbone``.
        use_pretrained_backbone: load pretrained backbone weights (ignored here: weights come from
            the DETR checkpoint).
        backbone_kwargs: extra timm arguments (``out_indices``, ``output_stride``, ``in_chans``).
        dilation: replace the stride of the last stage by dilation (DC5); timm backbones only.
        class_cost / bbox_cost / giou_cost: Hungarian matching weights.
        mask_loss_coefficient / dice_loss_coefficient / bbox_loss_coefficient /
            giou_loss_coefficient / eos_coefficient: loss weights (eos: the "no object" class).

    The normalized backbone view for modeling code is ``backbone_kind`` and ``resnet`` (see the
    module docstring).
    """

    model_type = "detr"
    attribute_map = {
        "hidden_size": "d_model",
        "num_attention_heads": "encoder_attention_heads",
        "num_hidden_layers": "encoder_layers",
    }

    def __init__(
        self,
        use_timm_backbone: bool = True,
        backbone_config: dict[str, Any] | Any | None = None,
        num_channels: int = 3,
        num_queries: int = 100,
        encoder_layers: int = 6,
        encoder_ffn_dim: int = 2048,
        encoder_attention_heads: int = 8,
        decoder_layers: int = 6,
        decoder_ffn_dim: int = 2048,
        decoder_attention_heads: int = 8,
        encoder_layerdrop: float = 0.0,
        decoder_layerdrop: float = 0.0,
        is_encoder_decoder: bool = True,
        activation_function: str = "relu",
        d_model: int = 256,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        activation_dropout: float = 0.0,
        init_std: float = 0.02,
        init_xavier_std: float = 1.0,
        auxiliary_loss: bool = False,
        position_embedding_type: str = "sine",
        backbone: str | None = "resnet50",
        use_pretrained_backbone: bool = True,
        backbone_kwargs: dict[str, Any] | None = None,
        dilation: bool | None = False,
        class_cost: float = 1,
        bbox_cost: float = 5,
        giou_cost: float = 2,
        mask_loss_coefficient: float = 1,
        dice_loss_coefficient: float = 1,
        bbox_loss_coefficient: float = 5,
        giou_loss_coefficient: float = 2,
        eos_coefficient: float = 0.1,
        **kwargs: Any,
    ) -> None:
        # v4 writes num_hidden_layers next to encoder_layers; encoder_layers is the source of truth.
        kwargs.pop("num_hidden_layers", None)
        if position_embedding_type not in POSITION_EMBEDDING_TYPES:
            raise ConfigError(
                f"position_embedding_type must be one of {POSITION_EMBEDDING_TYPES}, got {position_embedding_type!r}."
            )
        if backbone_config is not None and hasattr(backbone_config, "to_dict"):
            backbone_config = backbone_config.to_dict()
        if backbone_config is not None and not isinstance(backbone_config, dict):
            raise ConfigError(
                f"backbone_config must be a dict (or a config with to_dict()), got {type(backbone_config).__name__}."
            )
        if isinstance(backbone_config, dict) and backbone_config.get("model_type") == "timm_backbone":
            # Transformers 5 layout: fold the timm sub-config back into the v4 fields.
            timm = backbone_config
            use_timm_backbone = True
            backbone = timm.get("backbone") or "resnet50"
            num_channels = timm.get("num_channels", num_channels)
            use_pretrained_backbone = bool(timm.get("use_pretrained_backbone", False))
            if timm.get("output_stride") == 16:
                dilation = True
            out_indices = timm.get("out_indices")
            if out_indices is not None and list(out_indices) != _TIMM_OUT_INDICES:
                backbone_kwargs = {**(backbone_kwargs or {}), "out_indices": list(out_indices)}
            backbone_config = None
        elif backbone_config is not None:
            use_timm_backbone = False
            backbone_config = copy.deepcopy(backbone_config)
        if not use_timm_backbone:
            if backbone_config is None:
                backbone_config = default_resnet_backbone_config(num_channels)
            if backbone in (None, "resnet50"):
                backbone = None
            dilation = None  # timm-only, as Transformers 4 sets it
        elif backbone is None:
            raise ConfigError("use_timm_backbone=True needs a timm model name: pass backbone='resnet50' (or another).")
        if backbone_kwargs is not None and not isinstance(backbone_kwargs, dict):
            raise ConfigError(f"backbone_kwargs must be a dict or None, got {type(backbone_kwargs).__name__}.")
        if backbone_kwargs:  # v4 fills these in itself; keep only what differs
            extra = {
                k: v
                for k, v in backbone_kwargs.items()
                if not (
                    (k == "out_indices" and list(v) == _TIMM_OUT_INDICES)
                    or (k == "in_chans" and v == num_channels)
                    or (k == "output_stride" and v == 16 and dilation)
                )
            }
            backbone_kwargs = extra or None
        else:
            backbone_kwargs = None

        self.use_timm_backbone = bool(use_timm_backbone)
        self.backbone_config = backbone_config
        self.num_channels = num_channels
        self.num_queries = num_queries
        self.d_model = d_model
        self.encoder_ffn_dim = encoder_ffn_dim
        self.encoder_layers = encoder_layers
        self.encoder_attention_heads = encoder_attention_heads
        self.decoder_ffn_dim = decoder_ffn_dim
        self.decoder_layers = decoder_layers
        self.decoder_attention_heads = decoder_attention_heads
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.activation_dropout = activation_dropout
        self.activation_function = activation_function
        self.init_std = init_std
        self.init_xavier_std = init_xavier_std
        self.encoder_layerdrop = encoder_layerdrop
        self.decoder_layerdrop = decoder_layerdrop
        self.auxiliary_loss = auxiliary_loss
        self.position_embedding_type = position_embedding_type
        self.backbone = backbone
        self.use_pretrained_backbone = use_pretrained_backbone
        self.backbone_kwargs = backbone_kwargs
        self.dilation = dilation
        self.class_cost = class_cost
        self.bbox_cost = bbox_cost
        self.giou_cost = giou_cost
        self.mask_loss_coefficient = mask_loss_coefficient
        self.dice_loss_coefficient = dice_loss_coefficient
        self.bbox_loss_coefficient = bbox_loss_coefficient
        self.giou_loss_coefficient = giou_loss_coefficient
        self.eos_coefficient = eos_coefficient
        super().__init__(is_encoder_decoder=is_encoder_decoder, **kwargs)

    @classmethod
    def from_backbone_config(cls, backbone_config: dict[str, Any] | Any, **kwargs: Any) -> DetrConfig:
        """A config whose backbone is ``backbone_config`` (a ``resnet`` config or dict)."""
        return cls(backbone_config=backbone_config, **kwargs)

    # --- normalized backbone view --------------------------------------------------------------

    @property
    def backbone_kind(self) -> str:
        """``"timm"`` or ``"native"``: which ResNet implementation the checkpoint's weights follow."""
        return "timm" if self.use_timm_backbone else "native"

    @property
    def resnet(self) -> DetrResNetSpec:
        """The backbone as a :class:`DetrResNetSpec`; ``ConfigError`` if it is not a ResNet."""
        if self.use_timm_backbone:
            name = self.backbone
            if name not in _TIMM_RESNETS:
                raise ConfigError(
                    f"The timm backbone {name!r} is not supported; supported: {sorted(_TIMM_RESNETS)}."
                )
            layer_type, depths = _TIMM_RESNETS[name]
            kwargs = self.backbone_kwargs or {}
            out_indices = tuple(kwargs.get("out_indices", _TIMM_OUT_INDICES))
            return DetrResNetSpec(
                kind="timm",
                name=name,
                num_channels=kwargs.get("in_chans", self.num_channels),
                embedding_size=64,
                hidden_sizes=_WIDTHS[layer_type],
                depths=depths,
                layer_type=layer_type,
                hidden_act="relu",
                downsample_in_first_stage=False,
                downsample_in_bottleneck=False,
                out_indices=out_indices,
                out_features=tuple(_STAGE_NAMES[i] for i in out_indices),
                dilation=bool(self.dilation) or kwargs.get("output_stride") == 16,
                use_pretrained_backbone=bool(self.use_pretrained_backbone),
            )
        cfg = self.backbone_config or {}
        if cfg.get("model_type", "resnet") != "resnet":
            raise ConfigError(
                f"backbone_config has model_type {cfg.get('model_type')!r}; only 'resnet' backbones are supported."
            )
        default = default_resnet_backbone_config(self.num_channels)
        depths = tuple(cfg.get("depths", default["depths"]))
        stage_names = ["stem"] + [f"stage{i}" for i in range(1, len(depths) + 1)]
        out_features, out_indices = cfg.get("out_features"), cfg.get("out_indices")
        if out_features is None and out_indices is None:
            out_features = [stage_names[-1]]
        if out_indices is None:
            out_indices = [stage_names.index(name) for name in out_features]
        if out_features is None:
            out_features = [stage_names[i] for i in out_indices]
        layer_type = cfg.get("layer_type", "bottleneck")
        if layer_type not in ("basic", "bottleneck"):
            raise ConfigError(f"backbone_config layer_type must be 'basic' or 'bottleneck', got {layer_type!r}.")
        return DetrResNetSpec(
            kind="native",
            name=None,
            num_channels=cfg.get("num_channels", self.num_channels),
            embedding_size=cfg.get("embedding_size", 64),
            hidden_sizes=tuple(cfg.get("hidden_sizes", default["hidden_sizes"])),
            depths=depths,
            layer_type=layer_type,
            hidden_act=cfg.get("hidden_act", "relu"),
            downsample_in_first_stage=bool(cfg.get("downsample_in_first_stage", False)),
            downsample_in_bottleneck=bool(cfg.get("downsample_in_bottleneck", False)),
            out_indices=tuple(out_indices),
            out_features=tuple(out_features),
            dilation=False,
            use_pretrained_backbone=bool(self.use_pretrained_backbone),
        )

    # --- serialisation -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        # Transformers 5 crashes on "backbone_kwargs": null and rebuilds its timm sub-config from
        # "backbone" only when the key is absent, so it is written only when it holds something.
        if output.get("backbone_kwargs") is None:
            output.pop("backbone_kwargs", None)
        else:  # Transformers 4 uses backbone_kwargs as given: write the values it would fill in
            output["backbone_kwargs"] = {
                "out_indices": list(_TIMM_OUT_INDICES),
                "in_chans": self.num_channels,
                **({"output_stride": 16} if self.dilation else {}),
                **output["backbone_kwargs"],
            }
        output["num_hidden_layers"] = self.encoder_layers  # Transformers 4 writes it too
        return output
