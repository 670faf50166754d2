"""Parity with Hugging Face Transformers, the test-only oracle: checkpoints cross both ways.

For each class name shared by both libraries, and each config variant, a model built and saved by
Transformers loads here with the same outputs, and a model saved here loads in Transformers with
the same outputs. ``transformers`` is imported inside the tests only; the library never imports it.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from .model_tester import max_abs_diff

PARITY_ATOL = 1e-5


def compare_outputs(ours: Any, theirs: Any, keys: tuple[str, ...], atol: float = PARITY_ATOL) -> dict[str, float]:
    """Max abs diff for each key present in both outputs; fails above ``atol``."""
    diffs = {}
    for key in keys:
        a, b = ours.get(key) if hasattr(ours, "get") else None, theirs.get(key) if hasattr(theirs, "get") else None
        if a is None or b is None:
            continue
        diffs[key] = max_abs_diff(a, b)
    assert diffs, f"no comparable outputs among {keys}"
    worst = max(diffs.values())
    assert worst <= atol, f"outputs differ from Transformers: {diffs} (atol {atol})"
    return diffs


class ParityTesterMixin:
    """Round trips with Transformers for every class in ``parity_classes`` and config variant."""

    parity_classes: tuple[str, ...] = ()
    # name -> config kwargs; every variant runs for every class.
    parity_variants: dict[str, dict[str, Any]] = {}
    compared_outputs: tuple[str, ...] = (
        "logits",
        "prediction_logits",
        "seq_relationship_logits",
        "start_logits",
        "end_logits",
        "last_hidden_state",
        "pooler_output",
        "hidden_states",
        "attentions",
    )

    def get_parity_inputs(self, class_name: str, config: Any) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward_kwargs(self, variant: str) -> dict[str, Any]:
        return {"output_hidden_states": True}

    def _models(self, class_name: str, variant: str):
        transformers = pytest.importorskip("transformers")
        import polyformers

        theirs_class = getattr(transformers, class_name)
        ours_class = getattr(polyformers, class_name)
        kwargs = self.parity_variants[variant]
        return theirs_class, ours_class, kwargs

    def _run(self, model: torch.nn.Module, inputs: dict[str, torch.Tensor], variant: str) -> Any:
        with torch.no_grad():
            return model(**inputs, **self.forward_kwargs(variant))

    def test_transformers_checkpoint_loads_here(self, tmp_path, parity_case):
        class_name, variant = parity_case
        theirs_class, ours_class, kwargs = self._models(class_name, variant)
        torch.manual_seed(0)
        theirs = theirs_class(theirs_class.config_class(**kwargs)).eval()
        theirs.save_pretrained(tmp_path)
        ours, info = ours_class.from_pretrained(tmp_path, output_loading_info=True)
        assert info["missing_keys"] == [] and info["mismatched_keys"] == [], info
        inputs = self.get_parity_inputs(class_name, ours.config)
        compare_outputs(self._run(ours, inputs, variant), self._run(theirs, inputs, variant), self.compared_outputs)

    def test_our_checkpoint_loads_in_transformers(self, tmp_path, parity_case):
        class_name, variant = parity_case
        theirs_class, ours_class, kwargs = self._models(class_name, variant)
        torch.manual_seed(1)
        ours = ours_class(ours_class.config_class(**kwargs)).eval()
        ours.save_pretrained(tmp_path)
        theirs, info = theirs_class.from_pretrained(tmp_path, output_loading_info=True)
        assert not info["missing_keys"] and not info["mismatched_keys"], info
        theirs.eval()
        inputs = self.get_parity_inputs(class_name, ours.config)
        compare_outputs(self._run(ours, inputs, variant), self._run(theirs, inputs, variant), self.compared_outputs)


def parity_cases(classes: tuple[str, ...], variants: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """Every (class, variant) pair: parametrize a ``parity_case`` fixture with this."""
    return [(c, v) for c in classes for v in variants]


def generate_parity_cases(metafunc: Any) -> None:
    """Call from a ``pytest_generate_tests`` hook: parametrizes ``parity_case`` per test class."""
    if "parity_case" in metafunc.fixturenames:
        cls = metafunc.cls
        cases = parity_cases(cls.parity_classes, cls.parity_variants)
        metafunc.parametrize("parity_case", cases, ids=[f"{c}-{v}" for c, v in cases])
