"""Cross-framework equivalence: one model, converted PyTorch -> TensorFlow / Flax -> PyTorch.

For each (PyTorch class, framework) case, a randomly initialised PyTorch model is converted to the
other framework in memory and through files (PyTorch safetensors in, the framework's own format
out), and back; every output (main output, hidden states, attentions) must agree within 1e-5,
and the weights that come back must equal the originals. A plugin's suite subclasses
:class:`CrossFrameworkEquivalenceMixin` with a tiny config and calls
:func:`generate_equivalence_cases` from ``pytest_generate_tests``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from .model_tester import max_abs_diff

EQUIVALENCE_ATOL = 1e-5
_PREFIX = {"tf": "TF", "flax": "Flax"}
_FLAGS = {"tf": "from_tf", "flax": "from_flax"}
_COMPARED = ("logits", "prediction_logits", "seq_relationship_logits", "start_logits", "end_logits", "last_hidden_state", "pooler_output", "hidden_states", "attentions")


def framework_class_name(pt_name: str, framework: str) -> str:
    """``BertLMHeadModel`` -> ``TFBertLMHeadModel`` / ``FlaxBertForCausalLM`` (Transformers' names)."""
    name = _PREFIX[framework] + pt_name
    if framework == "flax" and name.endswith("LMHeadModel"):
        name = name[: -len("LMHeadModel")] + "ForCausalLM"
    return name


def _numpy(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return tuple(_numpy(v) for v in value)
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def generate_equivalence_cases(metafunc: Any) -> None:
    """Call from ``pytest_generate_tests``: parametrizes ``equivalence_case`` per test class."""
    if "equivalence_case" in metafunc.fixturenames:
        cls = metafunc.cls
        cases = [(c, f) for c in cls.equivalence_classes for f in cls.equivalence_frameworks]
        metafunc.parametrize("equivalence_case", cases, ids=[f"{c}-{f}" for c, f in cases])


class CrossFrameworkEquivalenceMixin:
    equivalence_classes: tuple[str, ...] = ()  # PyTorch class names, e.g. "BertForMaskedLM"
    equivalence_frameworks: tuple[str, ...] = ("tf", "flax")

    def get_equivalence_config(self) -> Any:
        raise NotImplementedError

    def get_equivalence_inputs(self, class_name: str, config: Any) -> dict[str, np.ndarray]:
        """Integer numpy inputs (no labels: TF and Flax report losses their own way)."""
        raise NotImplementedError

    # --- running each framework ----------------------------------------------------------------

    def _classes(self, class_name: str, framework: str) -> tuple[type, type]:
        pytest.importorskip({"tf": "tensorflow", "flax": "flax"}[framework])
        import polyformers

        return getattr(polyformers, class_name), getattr(polyformers, framework_class_name(class_name, framework))

    def _run(self, model: Any, framework: str, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        kwargs = {"output_attentions": True, "output_hidden_states": True}
        if framework == "pt":
            import torch

            with torch.no_grad():
                out = model(**{k: torch.from_numpy(v) for k, v in inputs.items()}, **kwargs)
        elif framework == "tf":
            import tensorflow as tf

            out = model({k: tf.constant(v) for k, v in inputs.items()}, **kwargs)
        else:
            out = model(**inputs, **kwargs)
        return {k: _numpy(out[k]) for k in _COMPARED if k in out and out[k] is not None}

    def _compare(self, expected: dict[str, Any], actual: dict[str, Any]) -> None:
        assert set(expected) == set(actual), (sorted(expected), sorted(actual))
        diffs = {k: max_abs_diff(expected[k], actual[k]) for k in expected}
        assert max(diffs.values()) <= EQUIVALENCE_ATOL, diffs

    def _pt_model(self, pt_class: type, config: Any) -> Any:
        import torch

        torch.manual_seed(0)
        return pt_class(config).eval()

    def _to_framework_in_memory(self, cls: type, framework: str, config: Any, state: dict) -> Any:
        if framework == "tf":
            model = cls(config)
            model.build_in_name_scope()
            report = model.load_pt_state_dict(state)
        else:
            model, report = cls.from_pretrained(None, config=config, state_dict=state, from_pt=True, output_loading_info=True)
        assert not report["missing_keys"] and not report["mismatched_keys"], report
        return model

    def _pt_state_of(self, model: Any, framework: str) -> dict[str, np.ndarray]:
        if framework == "tf":
            return model.pt_state_dict()
        from polyformers.conversion import flatten_dict, flax_key_to_pt, to_pt_state

        return to_pt_state(flatten_dict(model.params), flax_key_to_pt)

    # --- tests -----------------------------------------------------------------------------------

    def test_equivalence_in_memory(self, equivalence_case):
        import torch

        class_name, framework = equivalence_case
        pt_class, other_class = self._classes(class_name, framework)
        config = self.get_equivalence_config()
        pt_model = self._pt_model(pt_class, config)
        inputs = self.get_equivalence_inputs(class_name, config)
        other = self._to_framework_in_memory(other_class, framework, config, pt_model.state_dict())
        self._compare(self._run(pt_model, "pt", inputs), self._run(other, framework, inputs))

        state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self._pt_state_of(other, framework).items()}
        back = pt_class.from_pretrained(None, config=config, state_dict=state)
        for name, tensor in pt_model.state_dict().items():
            assert torch.equal(back.state_dict()[name], tensor), f"{name} changed on the way back from {framework}"

    def test_equivalence_through_files(self, tmp_path, equivalence_case):
        class_name, framework = equivalence_case
        pt_class, other_class = self._classes(class_name, framework)
        config = self.get_equivalence_config()
        pt_model = self._pt_model(pt_class, config)
        inputs = self.get_equivalence_inputs(class_name, config)
        expected = self._run(pt_model, "pt", inputs)

        pt_model.save_pretrained(tmp_path / "pt")
        other = other_class.from_pretrained(tmp_path / "pt", from_pt=True)
        self._compare(expected, self._run(other, framework, inputs))

        other.save_pretrained(tmp_path / framework)  # tf_model.h5 / flax_model.msgpack
        back = pt_class.from_pretrained(tmp_path / framework, **{_FLAGS[framework]: True})
        self._compare(expected, self._run(back, "pt", inputs))
