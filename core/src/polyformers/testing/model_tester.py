"""Shared tests for PyTorch models and configs: a plugin's suite subclasses these with a tiny config.

A test class sets ``all_model_classes`` and ``base_model_class`` and implements
:meth:`ModelTesterMixin.get_config` and :meth:`ModelTesterMixin.get_inputs`; pytest then runs
every ``test_*`` below for every class. The checks are the ones every Transformers-compatible
model must pass: output structure, save/load in each format, backbone<->head loading, loading
reports, shape-mismatch handling, determinism, batching, attentions and hidden states, and a
training step that reaches every parameter.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import pytest
import torch

from polyformers.errors import CheckpointError, WeightShapeMismatchError

ATOL = 1e-5


def max_abs_diff(a: Any, b: Any) -> float:
    """Largest absolute difference between two tensors or nested tuples of tensors."""
    if isinstance(a, (tuple, list)):
        assert len(a) == len(b), f"length {len(a)} != {len(b)}"
        return max((max_abs_diff(x, y) for x, y in zip(a, b)), default=0.0)
    if a is None or b is None:
        assert a is None and b is None, "one output is None and the other is not"
        return 0.0
    a, b = torch.as_tensor(a).detach().float(), torch.as_tensor(b).detach().float()
    assert a.shape == b.shape, f"shape {tuple(a.shape)} != {tuple(b.shape)}"
    return (a - b).abs().max().item() if a.numel() else 0.0


def first_output(outputs: Any) -> torch.Tensor:
    """The main output tensor: logits, start logits, or the last hidden state."""
    for key in ("logits", "prediction_logits", "start_logits", "last_hidden_state"):
        if key in outputs:
            return outputs[key]
    return outputs[0]


class ModelTesterMixin:
    """Generic tests for every PyTorch model class of a family."""

    all_model_classes: tuple[type, ...] = ()
    base_model_class: type | None = None
    # Regexes of parameters allowed to get no gradient in a training step, per class name.
    params_without_grad: dict[str, list[str]] = {}

    # --- what a family provides --------------------------------------------------------------

    def get_config(self) -> Any:
        raise NotImplementedError

    def get_inputs(self, config: Any, model_class: type, with_labels: bool = False) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    # --- helpers -------------------------------------------------------------------------------

    def make_model(self, model_class: type, config: Any | None = None) -> torch.nn.Module:
        torch.manual_seed(0)
        return model_class(config or self.get_config()).eval()

    def run(self, model: torch.nn.Module, inputs: dict[str, torch.Tensor], **kwargs: Any) -> Any:
        with torch.no_grad():
            return model(**inputs, **kwargs)

    def _each_class(self):
        assert self.all_model_classes, "set all_model_classes on the test class"
        return self.all_model_classes

    # --- tests ---------------------------------------------------------------------------------

    def test_forward_returns_model_output(self):
        for model_class in self._each_class():
            config = self.get_config()
            model = self.make_model(model_class, config)
            outputs = self.run(model, self.get_inputs(config, model_class))
            as_tuple = self.run(model, self.get_inputs(config, model_class), return_dict=False)
            assert isinstance(as_tuple, tuple), model_class.__name__
            assert max_abs_diff(outputs.to_tuple(), as_tuple) == 0.0, model_class.__name__
            main = first_output(outputs)
            # The main output leads the tuple, right after the loss when there is one.
            keys = list(outputs.keys())
            leading = keys[1] if keys[0] == "loss" else keys[0]
            assert torch.equal(main, outputs[leading]), f"{model_class.__name__}: main output is {leading!r}"
            assert torch.isfinite(main).all(), model_class.__name__

    def test_determinism(self):
        for model_class in self._each_class():
            config = self.get_config()
            model = self.make_model(model_class, config)
            inputs = self.get_inputs(config, model_class)
            assert max_abs_diff(first_output(self.run(model, inputs)), first_output(self.run(model, inputs))) == 0.0

    def test_batching_equivalence(self):
        """Each row of a batch gives the same output alone as inside the batch."""
        for model_class in self._each_class():
            config = self.get_config()
            model = self.make_model(model_class, config)
            inputs = self.get_inputs(config, model_class)
            batched = first_output(self.run(model, inputs))
            for row in range(batched.shape[0]):
                single = {k: v[row : row + 1] for k, v in inputs.items()}
                alone = first_output(self.run(model, single))
                assert max_abs_diff(batched[row : row + 1], alone) < ATOL, f"{model_class.__name__} row {row}"

    def test_save_load_round_trip(self, tmp_path):
        for model_class in self._each_class():
            config = self.get_config()
            model = self.make_model(model_class, config)
            inputs = self.get_inputs(config, model_class)
            directory = tmp_path / model_class.__name__
            model.save_pretrained(directory)
            assert (directory / "model.safetensors").is_file() and (directory / "config.json").is_file()
            assert not [f for f in os.listdir(directory) if f.endswith(".tmp")], "temporary files left behind"
            with open(directory / "config.json") as f:
                assert json.load(f)["architectures"] == [model_class.__name__]
            loaded, info = model_class.from_pretrained(directory, output_loading_info=True)
            assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == []
            assert not loaded.training, "from_pretrained must return a model in eval mode"
            assert max_abs_diff(first_output(self.run(model, inputs)), first_output(self.run(loaded, inputs))) == 0.0

    def test_save_load_sharded_and_pickle(self, tmp_path):
        model_class = self._each_class()[0]
        config = self.get_config()
        model = self.make_model(model_class, config)
        inputs = self.get_inputs(config, model_class)
        expected = first_output(self.run(model, inputs))

        sharded = tmp_path / "sharded"
        model.save_pretrained(sharded, max_shard_size="20KB")
        assert (sharded / "model.safetensors.index.json").is_file()
        assert not (sharded / "model.safetensors").exists()
        assert len([f for f in os.listdir(sharded) if f.startswith("model-")]) > 1
        assert max_abs_diff(expected, first_output(self.run(model_class.from_pretrained(sharded), inputs))) == 0.0

        # Saving again unsharded into the same directory removes the old shards and index.
        model.save_pretrained(sharded)
        assert sorted(os.listdir(sharded)) == ["config.json", "model.safetensors"]

        pickled = tmp_path / "pickled"
        model.save_pretrained(pickled, safe_serialization=False)
        assert (pickled / "pytorch_model.bin").is_file()
        assert max_abs_diff(expected, first_output(self.run(model_class.from_pretrained(pickled), inputs))) == 0.0

    def test_base_to_head_and_back(self, tmp_path, caplog):
        """A backbone checkpoint loads into every head; a head checkpoint loads into the backbone."""
        base_class = self.base_model_class
        config = self.get_config()
        base = self.make_model(base_class, config)
        base.save_pretrained(tmp_path / "base")
        base_state = base.state_dict()
        for model_class in self._each_class():
            if model_class is base_class:
                continue
            head, info = model_class.from_pretrained(tmp_path / "base", output_loading_info=True)
            prefix = head.base_model_prefix
            loaded_backbone = {k[len(prefix) + 1 :]: v for k, v in head.state_dict().items() if k.startswith(prefix + ".")}
            for key, value in loaded_backbone.items():
                if key in base_state:
                    assert torch.equal(value, base_state[key]), f"{model_class.__name__}: {key} not loaded"
            assert info["unexpected_keys"] == [] or all(not k.startswith(prefix) for k in info["unexpected_keys"])

            head.save_pretrained(tmp_path / model_class.__name__)
            with caplog.at_level(logging.WARNING):
                back, info = base_class.from_pretrained(tmp_path / model_class.__name__, output_loading_info=True)
            head_backbone = {k[len(prefix) + 1 :]: v for k, v in head.state_dict().items() if k.startswith(prefix + ".")}
            for key, value in back.state_dict().items():
                if key in head_backbone:
                    assert torch.equal(value, head_backbone[key]), f"{model_class.__name__} -> base: {key}"

    def test_missing_keys_reported(self, tmp_path, caplog):
        from safetensors.torch import load_file, save_file

        model_class = self._each_class()[-1]
        model = self.make_model(model_class)
        model.save_pretrained(tmp_path)
        state = load_file(tmp_path / "model.safetensors")
        dropped = sorted(state)[-1]
        del state[dropped]
        save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
        with caplog.at_level(logging.WARNING):
            loaded, info = model_class.from_pretrained(tmp_path, output_loading_info=True)
        assert dropped in info["missing_keys"]
        assert dropped in caplog.text
        assert not any(p.is_meta for p in loaded.parameters()), "missing parameters must be materialised"

    def test_unexpected_keys_reported(self, tmp_path, caplog):
        from safetensors.torch import load_file, save_file

        model_class = self._each_class()[0]
        model = self.make_model(model_class)
        model.save_pretrained(tmp_path)
        state = load_file(tmp_path / "model.safetensors")
        state["some_extra.weight"] = torch.zeros(2)
        save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
        with caplog.at_level(logging.WARNING):
            _, info = model_class.from_pretrained(tmp_path, output_loading_info=True)
        assert info["unexpected_keys"] == ["some_extra.weight"]
        assert "some_extra.weight" in caplog.text

    def test_mismatched_sizes(self, tmp_path):
        model_class = self._each_class()[0]
        config = self.get_config()
        model = self.make_model(model_class, config)
        model.save_pretrained(tmp_path)
        bigger = self.get_config()
        bigger.vocab_size = getattr(config, "vocab_size", 0) + 3
        with pytest.raises(WeightShapeMismatchError) as excinfo:
            model_class.from_pretrained(tmp_path, config=bigger)
        message = str(excinfo.value)
        assert "ignore_mismatched_sizes=True" in message
        assert str(config.vocab_size) in message and str(bigger.vocab_size) in message
        loaded, info = model_class.from_pretrained(tmp_path, config=bigger, ignore_mismatched_sizes=True, output_loading_info=True)
        assert info["mismatched_keys"], "the mismatch must be reported"
        key, old_shape, new_shape = info["mismatched_keys"][0]
        assert loaded.state_dict()[key].shape == new_shape
        assert not any(p.is_meta for p in loaded.parameters())

    def test_truncated_checkpoint_error(self, tmp_path):
        model_class = self._each_class()[0]
        self.make_model(model_class).save_pretrained(tmp_path)
        path = tmp_path / "model.safetensors"
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(CheckpointError) as excinfo:
            model_class.from_pretrained(tmp_path)
        assert "model.safetensors" in str(excinfo.value) and "truncated" in str(excinfo.value)

    def test_torch_dtype(self, tmp_path):
        model_class = self._each_class()[0]
        self.make_model(model_class).save_pretrained(tmp_path)
        assert model_class.from_pretrained(tmp_path).dtype == torch.float32
        half = model_class.from_pretrained(tmp_path, torch_dtype=torch.bfloat16)
        assert half.dtype == torch.bfloat16 and half.config.torch_dtype == "bfloat16"
        half.save_pretrained(tmp_path / "bf16")
        auto = model_class.from_pretrained(tmp_path / "bf16", torch_dtype="auto")
        assert auto.dtype == torch.bfloat16

    def test_attention_and_hidden_state_outputs(self):
        for model_class in self._each_class():
            config = self.get_config()
            model = self.make_model(model_class, config)
            inputs = self.get_inputs(config, model_class)
            outputs = self.run(model, inputs, output_attentions=True, output_hidden_states=True)
            layers = config.num_hidden_layers
            assert len(outputs.attentions) == layers, model_class.__name__
            assert len(outputs.hidden_states) == layers + 1, model_class.__name__
            attention = outputs.attentions[0]
            assert attention.shape[1] == config.num_attention_heads
            assert attention.shape[-1] == attention.shape[-2]
            torch.testing.assert_close(attention.sum(-1), torch.ones_like(attention.sum(-1)))

    def test_training_step_reaches_every_parameter(self):
        import re

        for model_class in self._each_class():
            config = self.get_config()
            model = self.make_model(model_class, config).train()
            inputs = self.get_inputs(config, model_class, with_labels=True)
            outputs = model(**inputs)
            if outputs.get("loss") is None:
                loss = first_output(outputs).float().pow(2).mean()  # the backbone has no labels
            else:
                loss = outputs.loss
            assert torch.isfinite(loss), model_class.__name__
            loss.backward()
            allowed = self.params_without_grad.get(model_class.__name__, [])
            no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None and not any(re.search(a, n) for a in allowed)]
            assert no_grad == [], f"{model_class.__name__}: no gradient for {no_grad}"


class ConfigTesterMixin:
    """Generic config tests: JSON round trip, save/load, common attributes."""

    config_class: type | None = None
    config_kwargs: dict[str, Any] = {}

    def test_config_json_round_trip(self, tmp_path):
        config = self.config_class(**self.config_kwargs)
        config.save_pretrained(tmp_path)
        loaded = self.config_class.from_pretrained(tmp_path)
        assert loaded.to_dict() | {"_name_or_path": None} == config.to_dict() | {"_name_or_path": None}
        for key, value in self.config_kwargs.items():
            assert getattr(loaded, key) == value

    def test_config_common_attributes(self):
        config = self.config_class(**self.config_kwargs)
        for attribute in ("hidden_size", "num_attention_heads", "num_hidden_layers"):
            assert hasattr(config, attribute), attribute
        config.num_labels = 5
        assert len(config.id2label) == 5 and config.label2id["LABEL_4"] == 4

    def test_config_writes_model_type(self, tmp_path):
        self.config_class(**self.config_kwargs).save_pretrained(tmp_path)
        with open(tmp_path / "config.json") as f:
            assert json.load(f)["model_type"] == self.config_class.model_type
