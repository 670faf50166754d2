"""DetrConfig: every Transformers option, files of Transformers 4.46.3 and 5.x both ways, the backbone view.

``fixtures/config_v4_*`` were written by Transformers 4.46.3's ``DetrConfig.save_pretrained`` and
``fixtures/config_v5_*`` by 5.24's (timm ResNet-50, the same with dilation, and a tiny native
ResNet); 4.46.3 is not needed at test time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polyformers import AutoConfig
from polyformers.errors import ConfigError
from polyformers_detr.configuration_detr import DetrConfig, DetrResNetSpec

FIXTURES = Path(__file__).parent / "fixtures"
TIMM_RESNET50 = dict(
    kind="timm", name="resnet50", num_channels=3, embedding_size=64, hidden_sizes=(256, 512, 1024, 2048), depths=(3, 4, 6, 3),
    layer_type="bottleneck", hidden_act="relu", downsample_in_first_stage=False, downsample_in_bottleneck=False,
    out_indices=(1, 2, 3, 4), out_features=("stage1", "stage2", "stage3", "stage4"),
)  # fmt: skip
TINY_NATIVE = dict(
    kind="native", name=None, num_channels=3, embedding_size=8, hidden_sizes=(8, 16, 32, 64), depths=(1, 1, 1, 1),
    layer_type="basic", hidden_act="relu", downsample_in_first_stage=False, downsample_in_bottleneck=False,
    out_indices=(4,), out_features=("stage4",), dilation=False,
)  # fmt: skip


def test_defaults_and_aliases():
    config = DetrConfig()
    assert (config.d_model, config.num_queries, config.encoder_layers, config.decoder_layers) == (256, 100, 6, 6)
    assert config.hidden_size == 256 and config.num_attention_heads == 8 and config.num_hidden_layers == 6
    config.hidden_size = 128
    config.num_attention_heads = 4
    assert config.d_model == 128 and config.encoder_attention_heads == 4
    assert config.is_encoder_decoder is True
    assert config.backbone_kind == "timm"
    assert config.resnet == DetrResNetSpec(**TIMM_RESNET50, dilation=False, use_pretrained_backbone=True)
    assert DetrConfig(num_hidden_layers=3, encoder_layers=2).encoder_layers == 2  # v4 files carry both


def test_every_transformers_option_is_an_argument():
    transformers = pytest.importorskip("transformers")
    import dataclasses

    theirs = {f.name for f in dataclasses.fields(transformers.DetrConfig)} if dataclasses.is_dataclass(transformers.DetrConfig) else set()
    theirs |= {"use_timm_backbone", "backbone", "use_pretrained_backbone", "backbone_kwargs", "dilation"}  # v4's
    base = {f.name for f in dataclasses.fields(transformers.PreTrainedConfig)} if dataclasses.is_dataclass(transformers.PreTrainedConfig) else set()
    import inspect

    ours = set(inspect.signature(DetrConfig.__init__).parameters)
    assert not (theirs - base - {"is_encoder_decoder"}) - ours


@pytest.mark.parametrize(
    ("name", "kind", "spec"),
    [
        ("config_v4_timm", "timm", dict(TIMM_RESNET50, dilation=False, use_pretrained_backbone=True)),
        ("config_v4_dilation", "timm", dict(TIMM_RESNET50, dilation=True, use_pretrained_backbone=True)),
        ("config_v5_timm", "timm", dict(TIMM_RESNET50, dilation=False, use_pretrained_backbone=False)),
        ("config_v5_dilation", "timm", dict(TIMM_RESNET50, dilation=True, use_pretrained_backbone=False)),
        ("config_v4_native", "native", dict(TINY_NATIVE, use_pretrained_backbone=False)),
        ("config_v5_native", "native", dict(TINY_NATIVE, use_pretrained_backbone=True)),
    ],
)
def test_reads_transformers_files(name, kind, spec):
    config = DetrConfig.from_pretrained(FIXTURES / name)
    assert config.backbone_kind == kind
    assert config.resnet == DetrResNetSpec(**spec)
    if "dilation" in name:
        assert config.num_queries == 7 and config.dilation is True
    assert type(AutoConfig.from_pretrained(FIXTURES / name)) is DetrConfig


@pytest.mark.parametrize("name", ["config_v4_timm", "config_v4_dilation", "config_v4_native", "config_v5_timm", "config_v5_dilation", "config_v5_native"])
def test_writes_files_both_transformers_versions_read(tmp_path, name):
    config = DetrConfig.from_pretrained(FIXTURES / name)
    config.save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    # The Transformers 4 layout: 4.46.3 rejects "backbone" next to a backbone_config, and 5.x
    # crashes on "backbone_kwargs": null, so neither is written.
    assert "backbone_kwargs" not in written
    if config.backbone_kind == "timm":
        assert written["use_timm_backbone"] is True and written["backbone"] == "resnet50" and written["backbone_config"] is None
    else:
        assert written["use_timm_backbone"] is False and written["backbone"] is None and written["backbone_config"]["model_type"] == "resnet"
    again = DetrConfig.from_pretrained(tmp_path)
    assert again.resnet == config.resnet and again.to_dict() == config.to_dict()

    transformers = pytest.importorskip("transformers")
    theirs = transformers.DetrConfig.from_pretrained(tmp_path)
    reference = transformers.DetrConfig.from_pretrained(FIXTURES / name.replace("v4", "v5"))
    keys = ("model_type", "backbone", "out_indices", "out_features", "output_stride", "num_channels", "depths", "hidden_sizes", "embedding_size", "layer_type")
    ours_seen, expected = theirs.backbone_config.to_dict(), reference.backbone_config.to_dict()
    assert {k: ours_seen.get(k) for k in keys} == {k: expected.get(k) for k in keys}
    for key in ("d_model", "num_queries", "encoder_layers", "decoder_layers", "dilation", "num_channels", "position_embedding_type"):
        assert getattr(theirs, key) == getattr(config, key) or (key == "dilation" and not theirs.dilation and not config.dilation)


def test_native_default_is_resnet50_with_stage4():
    config = DetrConfig(use_timm_backbone=False)
    assert config.backbone is None and config.dilation is None
    spec = config.resnet
    assert (spec.kind, spec.depths, spec.hidden_sizes, spec.layer_type, spec.out_features, spec.out_indices) == (
        "native", (3, 4, 6, 3), (256, 512, 1024, 2048), "bottleneck", ("stage4",), (4,)
    )


def test_backbone_config_object_and_v5_timm_dict():
    class FakeResNetConfig:
        def to_dict(self):
            return {"model_type": "resnet", "depths": [2, 2], "hidden_sizes": [4, 8], "embedding_size": 4, "layer_type": "basic", "out_indices": [1, 2]}

    config = DetrConfig.from_backbone_config(FakeResNetConfig())
    assert config.backbone_kind == "native" and config.resnet.out_features == ("stage1", "stage2")
    timm = DetrConfig(backbone_config={"model_type": "timm_backbone", "backbone": "resnet18", "out_indices": [2, 3, 4], "output_stride": 16, "num_channels": 1})
    spec = timm.resnet
    assert (spec.name, spec.layer_type, spec.hidden_sizes, spec.out_indices, spec.dilation, spec.num_channels) == (
        "resnet18", "basic", (64, 128, 256, 512), (2, 3, 4), True, 1
    )
    written = timm.to_dict()
    assert written["backbone_kwargs"] == {"out_indices": [2, 3, 4], "in_chans": 1, "output_stride": 16}


def test_errors_are_typed_and_say_the_fix():
    with pytest.raises(ConfigError, match="position_embedding_type"):
        DetrConfig(position_embedding_type="rope")
    with pytest.raises(ConfigError, match="backbone_config must be a dict"):
        DetrConfig(backbone_config=3)
    with pytest.raises(ConfigError, match="backbone='resnet50'"):
        DetrConfig(backbone=None)
    with pytest.raises(ConfigError, match="not supported"):
        DetrConfig(backbone="efficientnet_b0").resnet
    with pytest.raises(ConfigError, match="only 'resnet'"):
        DetrConfig(backbone_config={"model_type": "swin"}).resnet
    with pytest.raises(ConfigError, match="backbone_kwargs must be a dict"):
        DetrConfig(backbone_kwargs=[1])
