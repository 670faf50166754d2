"""Model output containers, named and shaped as in Transformers.

A :class:`ModelOutput` is a dataclass that also behaves like an ordered dict of its non-``None``
fields and, by integer index, like the tuple a ``return_dict=False`` call returns. Framework-free:
fields hold whatever tensors the framework produced.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import Any


class ModelOutput(OrderedDict):
    """Base of all outputs: ``out.logits``, ``out["logits"]`` and ``out[0]`` all work.

    Subclasses are ``@dataclass`` classes whose fields all default to ``None``; ``None`` fields
    are left out of the dict view and of :meth:`to_tuple`, exactly like Transformers.
    """

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                super().__setitem__(f.name, value)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return dict(self.items())[key]
        return self.to_tuple()[key]

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.keys() and value is not None:
            super().__setitem__(name, value)
        super().__setattr__(name, value)

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        super().__setattr__(key, value)

    def __delitem__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(f"You cannot use ``__delitem__`` on a {type(self).__name__} instance.")

    def setdefault(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"You cannot use ``setdefault`` on a {type(self).__name__} instance.")

    def pop(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"You cannot use ``pop`` on a {type(self).__name__} instance.")

    def update(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(f"You cannot use ``update`` on a {type(self).__name__} instance.")

    def __reduce__(self):
        return type(self), tuple(getattr(self, f.name) for f in fields(self))

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(self[k] for k in self.keys())


@dataclass(repr=False)
class BaseModelOutput(ModelOutput):
    last_hidden_state: Any = None
    hidden_states: Any = None
    attentions: Any = None


@dataclass(repr=False)
class BaseModelOutputWithPoolingAndCrossAttentions(ModelOutput):
    last_hidden_state: Any = None
    pooler_output: Any = None
    hidden_states: Any = None
    past_key_values: Any = None
    attentions: Any = None
    cross_attentions: Any = None


@dataclass(repr=False)
class BaseModelOutputWithPastAndCrossAttentions(ModelOutput):
    last_hidden_state: Any = None
    past_key_values: Any = None
    hidden_states: Any = None
    attentions: Any = None
    cross_attentions: Any = None


@dataclass(repr=False)
class MaskedLMOutput(ModelOutput):
    loss: Any = None
    logits: Any = None
    hidden_states: Any = None
    attentions: Any = None


@dataclass(repr=False)
class CausalLMOutputWithCrossAttentions(ModelOutput):
    loss: Any = None
    logits: Any = None
    past_key_values: Any = None
    hidden_states: Any = None
    attentions: Any = None
    cross_attentions: Any = None


@dataclass(repr=False)
class NextSentencePredictorOutput(ModelOutput):
    loss: Any = None
    logits: Any = None
    hidden_states: Any = None
    attentions: Any = None


@dataclass(repr=False)
class SequenceClassifierOutput(ModelOutput):
    loss: Any = None
    logits: Any = None
    hidden_states: Any = None
    attentions: Any = None


@dataclass(repr=False)
class MultipleChoiceModelOutput(ModelOutput):
    loss: Any = None
    logits: Any = None
    hidden_states: Any = None
    attentions: Any = None


@dataclass(repr=False)
class TokenClassifierOutput(ModelOutput):
    loss: Any = None
    logits: Any = None
    hidden_states: Any = None
    attentions: Any = None


@dataclass(repr=False)
class QuestionAnsweringModelOutput(ModelOutput):
    loss: Any = None
    start_logits: Any = None
    end_logits: Any = None
    hidden_states: Any = None
    attentions: Any = None


def _repr(self: ModelOutput) -> str:
    shown = ", ".join(f"{k}={_short(v)}" for k, v in self.items())
    return f"{type(self).__name__}({shown})"


def _short(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"<{type(value).__name__} shape={tuple(shape)}>"
    if isinstance(value, tuple):
        return f"<tuple of {len(value)}>"
    return repr(value)


ModelOutput.__repr__ = _repr  # type: ignore[method-assign]
