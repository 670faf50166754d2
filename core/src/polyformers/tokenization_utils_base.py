"""What every tokenizer shares, slow (pure Python) or fast (``tokenizers`` library).

The user-facing API of Transformers v4 lives here: ``__call__`` and its helpers (``encode``,
``encode_plus``, ``batch_encode_plus``, ``pad``, ``decode``), special tokens, padding and truncation
rules, and ``from_pretrained`` / ``save_pretrained``. Subclasses supply the tokenization itself:
:class:`~polyformers.tokenization_utils.PreTrainedTokenizer` in Python,
:class:`~polyformers.tokenization_utils_fast.PreTrainedTokenizerFast` on a ``tokenizers`` backend.

No deep-learning framework is imported here at module level: ``return_tensors="pt"`` imports torch
inside the conversion, and only then.
"""

from __future__ import annotations

import copy
import importlib
import json
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any, NamedTuple, Union

from polyformers.errors import FrameworkNotInstalledError
from polyformers.hub import pop_hub_kwargs, resolve_file
from polyformers.io_utils import atomic_write_text, read_json_file

logger = logging.getLogger(__name__)

# Transformers' sentinels: a model_max_length above LARGE_INTEGER means "no known limit".
VERY_LARGE_INTEGER = int(1e30)
LARGE_INTEGER = int(1e20)

SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
ADDED_TOKENS_FILE = "added_tokens.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
FULL_TOKENIZER_FILE = "tokenizer.json"

TextInput = str
PreTokenizedInput = list[str]
EncodedInput = list[int]
TextOrPreTokenized = Union[TextInput, PreTokenizedInput, EncodedInput]

# Keys of from_pretrained / tokenizer_config.json that steer loading and are never init arguments.
_LOADER_ONLY_KEYS = frozenset(
    {
        "use_fast",
        "trust_remote_code",
        "_from_auto",
        "_commit_hash",
        "_from_pipeline",
        "from_pipeline",
        "resume_download",
        "is_local",
        "backend",
        "auto_map",
        "tokenizer_class",
        "processor_class",
        "local_files_only",
        "cache_dir",
        "revision",
        "token",
        "use_auth_token",
        "force_download",
        "proxies",
        "subfolder",
        "device_map",
        "config",
        "tokenizer_type",
    }
)


# --- enums -------------------------------------------------------------------------------------


class ExplicitEnum(str, Enum):
    """A string enum whose error for an unknown value lists the valid ones."""

    @classmethod
    def _missing_(cls, value: object) -> None:
        valid = ", ".join(repr(member.value) for member in cls)
        raise ValueError(f"{value!r} is not a valid {cls.__name__}; expected one of {valid}.")


class PaddingStrategy(ExplicitEnum):
    LONGEST = "longest"
    MAX_LENGTH = "max_length"
    DO_NOT_PAD = "do_not_pad"


class TruncationStrategy(ExplicitEnum):
    ONLY_FIRST = "only_first"
    ONLY_SECOND = "only_second"
    LONGEST_FIRST = "longest_first"
    DO_NOT_TRUNCATE = "do_not_truncate"


class TensorType(ExplicitEnum):
    PYTORCH = "pt"
    TENSORFLOW = "tf"
    NUMPY = "np"
    JAX = "jax"


def _parse_enum(enum_cls: type[ExplicitEnum], value: Any, argument: str, booleans: str) -> ExplicitEnum:
    """``enum_cls(value)`` with an error that names the argument and lists what it accepts."""
    if isinstance(value, enum_cls):
        return value
    try:
        return enum_cls(value)
    except ValueError:
        valid = ", ".join(repr(member.value) for member in enum_cls)
        raise ValueError(
            f"{argument}={value!r} is not supported: expected {booleans}one of {valid}. "
            f"For example {argument}={next(iter(enum_cls)).value!r}."
        ) from None


class CharSpan(NamedTuple):
    """Span ``[start, end)`` in the original string."""

    start: int
    end: int


class TokenSpan(NamedTuple):
    """Span ``[start, end)`` in the list of tokens."""

    start: int
    end: int


# --- added tokens ------------------------------------------------------------------------------


class AddedToken:
    """A token added to a vocabulary, with how it matches in text.

    The same fields, defaults and ``__getstate__`` layout as ``tokenizers.AddedToken``, so that the
    dicts in ``tokenizer_config.json``'s ``added_tokens_decoder`` read and write identically.

    Args:
        content: the token's text.
        single_word: match only as a whole word.
        lstrip / rstrip: swallow whitespace on the left / right of a match.
        normalized: match against normalized text (e.g. lowercased); defaults to ``not special``.
        special: a special token, skipped by ``decode(..., skip_special_tokens=True)``.
    """

    def __init__(
        self,
        content: str,
        single_word: bool = False,
        lstrip: bool = False,
        rstrip: bool = False,
        special: bool = False,
        normalized: bool | None = None,
    ) -> None:
        if not isinstance(content, str):
            raise TypeError(f"AddedToken content must be a str, got {type(content).__name__}: {content!r}.")
        self.content = content
        self.single_word = single_word
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.special = special
        self.normalized = normalized if normalized is not None else not special

    def __getstate__(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "single_word": self.single_word,
            "lstrip": self.lstrip,
            "rstrip": self.rstrip,
            "normalized": self.normalized,
            "special": self.special,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __str__(self) -> str:
        return self.content

    def __repr__(self) -> str:
        return (
            f"AddedToken({self.content!r}, rstrip={self.rstrip}, lstrip={self.lstrip}, "
            f"single_word={self.single_word}, normalized={self.normalized}, special={self.special})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AddedToken):
            return NotImplemented
        return self.__getstate__() == other.__getstate__()

    def __hash__(self) -> int:
        return hash(self.content)


def _added_token_from_json(value: Any) -> Any:
    """Turn the ``{"__type": "AddedToken", ...}`` dicts of older config files into AddedTokens."""
    if isinstance(value, dict):
        if value.get("__type") == "AddedToken":
            fields = {k: v for k, v in value.items() if k != "__type"}
            return AddedToken(**fields)
        return {k: _added_token_from_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_added_token_from_json(v) for v in value)
    return value


def _added_token_to_json(value: Any) -> Any:
    """The inverse of :func:`_added_token_from_json`, for writing ``tokenizer_config.json``."""
    if isinstance(value, AddedToken):
        return {"__type": "AddedToken", **value.__getstate__()}
    if isinstance(value, dict):
        return {k: _added_token_to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_added_token_to_json(v) for v in value]
    return value


# --- tensors -----------------------------------------------------------------------------------


_FRAMEWORKS = {
    # flag: (module to import, human name, pip package)
    TensorType.PYTORCH: ("torch", "PyTorch", "torch"),
    TensorType.TENSORFLOW: ("tensorflow", "TensorFlow", "tensorflow"),
    TensorType.JAX: ("jax.numpy", "JAX", "jax"),
    TensorType.NUMPY: ("numpy", "NumPy", "numpy"),
}


def _import_framework(tensor_type: TensorType) -> Any:
    module, name, package = _FRAMEWORKS[tensor_type]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise FrameworkNotInstalledError(
            f"return_tensors={tensor_type.value!r} needs {name}, which is not installed. Install it "
            f"(pip install {package}), or pass return_tensors='np' for NumPy arrays or "
            f"return_tensors=None for Python lists."
        ) from exc


def _tensor_functions(tensor_type: TensorType) -> tuple[Any, Any]:
    """``(as_tensor, is_tensor)`` for a framework, importing it now."""
    lib = _import_framework(tensor_type)
    if tensor_type == TensorType.PYTORCH:
        return lib.tensor, lib.is_tensor
    if tensor_type == TensorType.TENSORFLOW:
        return lib.constant, lib.is_tensor
    if tensor_type == TensorType.JAX:
        jax = importlib.import_module("jax")
        return lib.array, lambda value: isinstance(value, jax.Array)

    def as_numpy(value: Any) -> Any:
        array = lib.asarray(value)
        if array.dtype == object:  # ragged rows: refuse, like the other frameworks do
            raise ValueError("rows of different lengths")
        return array

    return as_numpy, lambda value: isinstance(value, lib.ndarray)


def to_py_obj(value: Any) -> Any:
    """Tensors and arrays of any framework (and nested lists of them) as Python lists and numbers."""
    if isinstance(value, (dict, Mapping)):
        return {k: to_py_obj(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_py_obj(v) for v in value]
    if hasattr(value, "tolist"):  # torch, numpy, tensorflow (via .numpy()), jax
        return value.tolist()
    if hasattr(value, "numpy"):
        return value.numpy().tolist()
    return value


def _tensor_type_of(value: Any) -> TensorType | None:
    """The framework ``value`` (a tensor or array) belongs to, without importing any framework."""
    module = type(value).__module__.split(".")[0]
    return {
        "torch": TensorType.PYTORCH,
        "tensorflow": TensorType.TENSORFLOW,
        "jax": TensorType.JAX,
        "jaxlib": TensorType.JAX,
        "numpy": TensorType.NUMPY,
    }.get(module)


# --- BatchEncoding -----------------------------------------------------------------------------


class BatchEncoding(dict):
    """The output of a tokenizer: a dict (``input_ids``, ``attention_mask``, ...) with extras.

    Keys are readable as attributes (``enc.input_ids``). Outputs of fast tokenizers also keep the
    backend's ``tokenizers.Encoding`` objects, which give token-level alignment: :meth:`tokens`,
    :meth:`word_ids`, :meth:`sequence_ids`, :meth:`char_to_token`, ...

    Args:
        data: the fields.
        encoding: the backend encodings (fast tokenizers only), one per row.
        tensor_type: convert the fields to tensors of this framework ('pt', 'tf', 'np', 'jax').
        prepend_batch_axis: add a batch dimension while converting.
        n_sequences: 1 for single texts, 2 for pairs.
    """

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        encoding: Any = None,
        tensor_type: str | TensorType | None = None,
        prepend_batch_axis: bool = False,
        n_sequences: int | None = None,
    ) -> None:
        super().__init__(data or {})
        if encoding is not None and not isinstance(encoding, (list, tuple)):
            encoding = [encoding]
        self._encodings = list(encoding) if encoding is not None else None
        if n_sequences is None and self._encodings:
            n_sequences = self._encodings[0].n_sequences
        self._n_sequences = n_sequences
        self.convert_to_tensors(tensor_type=tensor_type, prepend_batch_axis=prepend_batch_axis)

    # dict access: strings index fields, integers the backend encodings, slices every field
    def __getitem__(self, item: str | int | slice) -> Any:
        if isinstance(item, str):
            return super().__getitem__(item)
        if isinstance(item, int) and self._encodings is not None:
            return self._encodings[item]
        if isinstance(item, slice):
            return {key: value[item] for key, value in self.items()}
        raise KeyError(
            f"BatchEncoding keys are field names (str), integers (the backend Encoding of a row, "
            f"fast tokenizers only) or slices; got {type(item).__name__} {item!r}."
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_encodings", "_n_sequences"):
            raise AttributeError(name)
        try:
            return super().__getitem__(name)
        except KeyError:
            raise AttributeError(
                f"BatchEncoding has no attribute or field {name!r}; its fields are {sorted(self)}."
            ) from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict.__repr__(self)})"

    @property
    def data(self) -> dict[str, Any]:
        """The fields themselves (Transformers' ``UserDict`` spelling); this object is that dict."""
        return self

    @property
    def encodings(self) -> list[Any] | None:
        """The ``tokenizers.Encoding`` of each row, or None for a slow tokenizer's output."""
        return self._encodings

    @property
    def is_fast(self) -> bool:
        return self._encodings is not None

    @property
    def n_sequences(self) -> int | None:
        return self._n_sequences

    # --- alignment (fast tokenizers) -----------------------------------------------------------

    def _encoding(self, batch_index: int, method: str) -> Any:
        if self._encodings is None:
            raise ValueError(
                f"{method}() needs the alignment data that only fast tokenizers keep; this "
                f"BatchEncoding came from a Python tokenizer. Use the ...Fast class (e.g. "
                f"BertTokenizerFast) instead."
            )
        return self._encodings[batch_index]

    def _batch_and_index(self, batch_or_index: int, index: int | None) -> tuple[int, int]:
        if index is None:
            return 0, batch_or_index
        return batch_or_index, index

    def tokens(self, batch_index: int = 0) -> list[str]:
        """The tokens of row ``batch_index`` (after special tokens and padding were added)."""
        return self._encoding(batch_index, "tokens").tokens

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        """For each token, the index of the word it comes from (None for special tokens)."""
        return self._encoding(batch_index, "word_ids").word_ids

    def words(self, batch_index: int = 0) -> list[int | None]:
        """Deprecated alias of :meth:`word_ids`, kept because Transformers has it."""
        warnings.warn("words() is deprecated; use word_ids().", FutureWarning, stacklevel=2)
        return self.word_ids(batch_index)

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        """For each token, 0 (first text), 1 (second text of a pair) or None (special tokens)."""
        return self._encoding(batch_index, "sequence_ids").sequence_ids

    def token_to_sequence(self, batch_or_token_index: int, token_index: int | None = None) -> int | None:
        batch_index, token_index = self._batch_and_index(batch_or_token_index, token_index)
        return self._encoding(batch_index, "token_to_sequence").token_to_sequence(token_index)

    def token_to_word(self, batch_or_token_index: int, token_index: int | None = None) -> int | None:
        batch_index, token_index = self._batch_and_index(batch_or_token_index, token_index)
        return self._encoding(batch_index, "token_to_word").token_to_word(token_index)

    def token_to_chars(self, batch_or_token_index: int, token_index: int | None = None) -> CharSpan | None:
        batch_index, token_index = self._batch_and_index(batch_or_token_index, token_index)
        span = self._encoding(batch_index, "token_to_chars").token_to_chars(token_index)
        return CharSpan(*span) if span is not None else None

    def char_to_token(
        self, batch_or_char_index: int, char_index: int | None = None, sequence_index: int = 0
    ) -> int | None:
        batch_index, char_index = self._batch_and_index(batch_or_char_index, char_index)
        return self._encoding(batch_index, "char_to_token").char_to_token(char_index, sequence_index)

    def word_to_tokens(
        self, batch_or_word_index: int, word_index: int | None = None, sequence_index: int = 0
    ) -> TokenSpan | None:
        batch_index, word_index = self._batch_and_index(batch_or_word_index, word_index)
        span = self._encoding(batch_index, "word_to_tokens").word_to_tokens(word_index, sequence_index)
        return TokenSpan(*span) if span is not None else None

    # --- tensors -------------------------------------------------------------------------------

    def convert_to_tensors(
        self, tensor_type: str | TensorType | None = None, prepend_batch_axis: bool = False
    ) -> BatchEncoding:
        """Convert every field to a tensor of ``tensor_type`` ('pt', 'tf', 'np', 'jax'), in place.

        The framework is imported here, not before; a missing one raises an ImportError that names
        it. Fields whose rows have different lengths cannot become tensors: pad them first.
        """
        if tensor_type is None:
            return self
        tensor_type = _parse_enum(TensorType, tensor_type, "return_tensors", "None or ")
        as_tensor, is_tensor = _tensor_functions(tensor_type)
        for key, value in list(self.items()):
            if prepend_batch_axis:
                value = [value]
            if is_tensor(value):
                continue
            try:
                self[key] = as_tensor(value)
            except (ValueError, TypeError, RuntimeError) as exc:
                if key == "overflowing_tokens":
                    raise ValueError(
                        "Unable to create a tensor of the overflowing tokens: they have different "
                        "lengths. Use a fast tokenizer (which returns overflowing windows as rows), "
                        "or return_tensors=None."
                    ) from exc
                raise ValueError(
                    f"Unable to create a {tensor_type.value!r} tensor from the field {key!r}: its "
                    f"rows have different lengths (or are nested too deeply). Pass padding=True "
                    f"(and truncation=True) to get rows of one length, or return_tensors=None."
                ) from exc
        return self

    def to(self, device: Any, *, non_blocking: bool = False) -> BatchEncoding:
        """Move every PyTorch tensor to ``device`` (a str, int or ``torch.device``), in place."""
        torch = _import_framework(TensorType.PYTORCH)
        if not isinstance(device, (str, int, torch.device)):
            warnings.warn(
                f"BatchEncoding.to() takes a device (str, int or torch.device), got "
                f"{type(device).__name__}; nothing was moved.",
                stacklevel=2,
            )
            return self
        for key, value in list(self.items()):
            if isinstance(value, torch.Tensor):
                self[key] = value.to(device=device, non_blocking=non_blocking)
        return self


# --- the base class ----------------------------------------------------------------------------


def _special_token(name: str) -> property:
    def get(self: PreTrainedTokenizerBase) -> str | None:
        value = self._special_tokens_map[name]
        return None if value is None else str(value)

    def set(self: PreTrainedTokenizerBase, value: str | AddedToken | None) -> None:
        if value is not None and not isinstance(value, (str, AddedToken)):
            raise TypeError(f"{name} must be a str, an AddedToken or None, got {type(value).__name__}: {value!r}.")
        self._special_tokens_map[name] = value

    return property(get, set, doc=f"The {name.replace('_', ' ')} as a string, or None if unset.")


def _special_token_id(name: str) -> property:
    def get(self: PreTrainedTokenizerBase) -> int | None:
        token = getattr(self, name)
        return None if token is None else self.convert_tokens_to_ids(token)

    def set(self: PreTrainedTokenizerBase, value: int | None) -> None:
        setattr(self, name, None if value is None else self.convert_ids_to_tokens(value))

    return property(get, set, doc=f"The id of the {name.replace('_', ' ')}, or None if unset.")


class PreTrainedTokenizerBase:
    """The API shared by slow and fast tokenizers (see the module docstring).

    Keyword arguments (all optional, as in Transformers):
        model_max_length: the longest input the model takes; ``truncation=True`` and
            ``padding='max_length'`` default to it.
        padding_side / truncation_side: ``'right'`` (default) or ``'left'``.
        model_input_names: the fields the model takes, first one the ids.
        clean_up_tokenization_spaces: what ``decode`` does by default.
        split_special_tokens: tokenize special tokens in text like any other text.
        bos_token, eos_token, unk_token, sep_token, pad_token, cls_token, mask_token,
        additional_special_tokens: the special tokens (str or :class:`AddedToken`).

    Every keyword argument is kept in ``init_kwargs`` and written back by ``save_pretrained``.
    """

    vocab_files_names: dict[str, str] = {}
    model_input_names: list[str] = ["input_ids", "token_type_ids", "attention_mask"]
    padding_side: str = "right"
    truncation_side: str = "right"
    slow_tokenizer_class: type | None = None

    SPECIAL_TOKENS_ATTRIBUTES = [
        "bos_token",
        "eos_token",
        "unk_token",
        "sep_token",
        "pad_token",
        "cls_token",
        "mask_token",
        "additional_special_tokens",
    ]

    bos_token = _special_token("bos_token")
    eos_token = _special_token("eos_token")
    unk_token = _special_token("unk_token")
    sep_token = _special_token("sep_token")
    pad_token = _special_token("pad_token")
    cls_token = _special_token("cls_token")
    mask_token = _special_token("mask_token")
    bos_token_id = _special_token_id("bos_token")
    eos_token_id = _special_token_id("eos_token")
    unk_token_id = _special_token_id("unk_token")
    sep_token_id = _special_token_id("sep_token")
    pad_token_id = _special_token_id("pad_token")
    cls_token_id = _special_token_id("cls_token")
    mask_token_id = _special_token_id("mask_token")

    def __init__(self, **kwargs: Any) -> None:
        self.init_inputs: tuple = ()
        self.init_kwargs = copy.deepcopy(kwargs)
        self.name_or_path = str(kwargs.pop("name_or_path", ""))

        model_max_length = kwargs.pop("model_max_length", kwargs.pop("max_len", None))
        self.model_max_length = int(model_max_length) if model_max_length is not None else VERY_LARGE_INTEGER
        self.padding_side = self._check_side("padding_side", kwargs.pop("padding_side", self.padding_side))
        self.truncation_side = self._check_side("truncation_side", kwargs.pop("truncation_side", self.truncation_side))
        self.model_input_names = list(kwargs.pop("model_input_names", self.model_input_names))
        self.clean_up_tokenization_spaces = bool(kwargs.pop("clean_up_tokenization_spaces", False))
        self.split_special_tokens = bool(kwargs.pop("split_special_tokens", False))
        self._pad_token_type_id = 0
        self._warned: set[str] = set()

        self._special_tokens_map: dict[str, Any] = dict.fromkeys(self.SPECIAL_TOKENS_ATTRIBUTES)
        self._special_tokens_map["additional_special_tokens"] = []
        for key in self.SPECIAL_TOKENS_ATTRIBUTES:
            value = kwargs.pop(key, None)
            if value is None:
                continue
            if key == "additional_special_tokens":
                self.additional_special_tokens = value
            else:
                setattr(self, key, value)

    @staticmethod
    def _check_side(argument: str, value: str) -> str:
        if value not in ("right", "left"):
            raise ValueError(f"{argument} must be 'right' or 'left', got {value!r}.")
        return value

    # --- special tokens ------------------------------------------------------------------------

    @property
    def additional_special_tokens(self) -> list[str]:
        return [str(token) for token in self._special_tokens_map["additional_special_tokens"]]

    @additional_special_tokens.setter
    def additional_special_tokens(self, value: Sequence[str | AddedToken] | None) -> None:
        value = [] if value is None else value
        if not isinstance(value, (list, tuple)) or not all(isinstance(t, (str, AddedToken)) for t in value):
            raise TypeError(
                f"additional_special_tokens must be a list of str or AddedToken, got {value!r}."
            )
        self._special_tokens_map["additional_special_tokens"] = list(value)

    @property
    def additional_special_tokens_ids(self) -> list[int]:
        return self.convert_tokens_to_ids(self.additional_special_tokens)

    @property
    def pad_token_type_id(self) -> int:
        return self._pad_token_type_id

    @property
    def special_tokens_map(self) -> dict[str, str | list[str]]:
        """The special tokens that are set, as strings: ``{'cls_token': '[CLS]', ...}``."""
        result: dict[str, Any] = {}
        for key in self.SPECIAL_TOKENS_ATTRIBUTES:
            value = self._special_tokens_map[key]
            if value:
                result[key] = [str(v) for v in value] if isinstance(value, list) else str(value)
        return result

    @property
    def special_tokens_map_extended(self) -> dict[str, Any]:
        """Like :attr:`special_tokens_map`, keeping :class:`AddedToken` objects as they are."""
        return {key: value for key, value in self._special_tokens_map.items() if value}

    @property
    def all_special_tokens_extended(self) -> list[str | AddedToken]:
        seen: dict[str, str | AddedToken] = {}
        for value in self.special_tokens_map_extended.values():
            for token in value if isinstance(value, list) else [value]:
                seen.setdefault(str(token), token)
        return list(seen.values())

    @property
    def all_special_tokens(self) -> list[str]:
        """Every special token once, in attribute order (unk, sep, pad, cls, mask for BERT)."""
        return [str(token) for token in self.all_special_tokens_extended]

    @property
    def all_special_ids(self) -> list[int]:
        return self.convert_tokens_to_ids(self.all_special_tokens)

    def add_special_tokens(
        self,
        special_tokens_dict: Mapping[str, str | AddedToken | Sequence[str | AddedToken]],
        replace_additional_special_tokens: bool = True,
    ) -> int:
        """Set special tokens (``{'pad_token': '[PAD]'}``) and add the new ones to the vocabulary.

        Returns the number of tokens added to the vocabulary.
        """
        if not special_tokens_dict:
            return 0
        if not isinstance(special_tokens_dict, Mapping):
            raise TypeError(
                f"add_special_tokens takes a dict like {{'pad_token': '[PAD]'}}, got "
                f"{type(special_tokens_dict).__name__}. To add plain tokens use add_tokens()."
            )
        to_add: list[AddedToken] = []
        for key, value in special_tokens_dict.items():
            if key not in self.SPECIAL_TOKENS_ATTRIBUTES:
                raise ValueError(
                    f"add_special_tokens: {key!r} is not a special-token attribute; expected one "
                    f"of {self.SPECIAL_TOKENS_ATTRIBUTES}."
                )
            if key == "additional_special_tokens":
                if not isinstance(value, (list, tuple)):
                    raise TypeError(
                        f"additional_special_tokens must be a list of str or AddedToken, got "
                        f"{type(value).__name__}: {value!r}."
                    )
                tokens = [self._as_special_added_token(token, key) for token in value]
                if replace_additional_special_tokens:
                    self.additional_special_tokens = tokens
                else:
                    known = set(self.additional_special_tokens)
                    tokens = [t for t in tokens if t.content not in known]
                    self._special_tokens_map[key].extend(tokens)
                to_add.extend(tokens)
            else:
                token = self._as_special_added_token(value, key)
                setattr(self, key, token)
                to_add.append(token)
        return self.add_tokens(to_add, special_tokens=True)

    @staticmethod
    def _as_special_added_token(token: Any, key: str) -> AddedToken:
        if isinstance(token, AddedToken):
            return token
        if isinstance(token, str):
            return AddedToken(token, rstrip=False, lstrip=False, normalized=False, special=True)
        raise TypeError(f"{key} must be a str or an AddedToken, got {type(token).__name__}: {token!r}.")

    def add_tokens(
        self, new_tokens: str | AddedToken | Sequence[str | AddedToken], special_tokens: bool = False
    ) -> int:
        """Add tokens to the vocabulary (those already in it are skipped); returns how many were new.

        New tokens get ids after the existing vocabulary; resize the model's embeddings to match.
        """
        if not new_tokens:
            return 0
        if not isinstance(new_tokens, (list, tuple)):
            new_tokens = [new_tokens]
        for token in new_tokens:
            if not isinstance(token, (str, AddedToken)):
                raise TypeError(
                    f"add_tokens takes str or AddedToken objects, got {type(token).__name__}: {token!r}."
                )
        return self._add_tokens(list(new_tokens), special_tokens=special_tokens)

    def _add_tokens(self, new_tokens: list[str | AddedToken], special_tokens: bool = False) -> int:
        raise NotImplementedError

    # --- vocabulary (implemented by the slow and fast bases) -----------------------------------

    @property
    def is_fast(self) -> bool:
        raise NotImplementedError

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def get_vocab(self) -> dict[str, int]:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        raise NotImplementedError

    def convert_ids_to_tokens(self, ids: int | Sequence[int], skip_special_tokens: bool = False) -> str | list[str]:
        raise NotImplementedError

    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False, **kwargs: Any) -> list[str]:
        raise NotImplementedError

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name_or_path={self.name_or_path!r}, vocab_size={self.vocab_size}, "
            f"model_max_length={self.model_max_length}, is_fast={self.is_fast}, "
            f"padding_side={self.padding_side!r}, truncation_side={self.truncation_side!r}, "
            f"special_tokens={self.special_tokens_map}, "
            f"clean_up_tokenization_spaces={self.clean_up_tokenization_spaces})"
        )

    # --- special-token layout (subclasses override for their model) ----------------------------

    def build_inputs_with_special_tokens(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None
    ) -> list[int]:
        """Add the model's special tokens around one or two id sequences (none by default)."""
        if token_ids_1 is None:
            return list(token_ids_0)
        return token_ids_0 + token_ids_1

    def create_token_type_ids_from_sequences(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None
    ) -> list[int]:
        """Segment ids for the output of :meth:`build_inputs_with_special_tokens`."""
        if token_ids_1 is None:
            return [0] * len(token_ids_0)
        return [0] * len(token_ids_0) + [1] * len(token_ids_1)

    def get_special_tokens_mask(
        self,
        token_ids_0: list[int],
        token_ids_1: list[int] | None = None,
        already_has_special_tokens: bool = False,
    ) -> list[int]:
        """1 for each special token, 0 for a sequence token, in the layout of the model inputs."""
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError(
                    "With already_has_special_tokens=True, pass the whole sequence (special tokens "
                    "included) as token_ids_0 and leave token_ids_1 as None."
                )
            special_ids = set(self.all_special_ids)
            return [1 if token in special_ids else 0 for token in token_ids_0]
        return [0] * (len(token_ids_0) + (len(token_ids_1) if token_ids_1 else 0))

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """How many special tokens encoding one text (or a pair) adds."""
        return len(self.build_inputs_with_special_tokens([], [] if pair else None))

    # --- __call__ and friends ------------------------------------------------------------------

    def __call__(
        self,
        text: TextOrPreTokenized | Sequence[TextOrPreTokenized] | None = None,
        text_pair: TextOrPreTokenized | Sequence[TextOrPreTokenized] | None = None,
        text_target: TextOrPreTokenized | Sequence[TextOrPreTokenized] | None = None,
        text_pair_target: TextOrPreTokenized | Sequence[TextOrPreTokenized] | None = None,
        add_special_tokens: bool = True,
        padding: bool | str | PaddingStrategy = False,
        truncation: bool | str | TruncationStrategy | None = None,
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | TensorType | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
        **kwargs: Any,
    ) -> BatchEncoding:
        """Tokenize one text, a pair of texts, or a batch of either, and prepare model inputs.

        Args:
            text: a ``str``; a list of ``str`` (a batch, or with ``is_split_into_words=True`` one
                pre-tokenized text); or a list of lists of ``str`` (a batch of pre-tokenized texts).
            text_pair: the second text of each pair, shaped like ``text``.
            text_target / text_pair_target: texts whose ids become the ``labels`` field.
            add_special_tokens: add the model's special tokens (``[CLS]``, ``[SEP]``, ...).
            padding: ``True``/``'longest'`` (to the longest in the batch), ``'max_length'`` (to
                ``max_length``, or ``model_max_length``), ``False``/``'do_not_pad'``.
            truncation: ``True``/``'longest_first'``, ``'only_first'``, ``'only_second'``,
                ``False``/``'do_not_truncate'``. ``None`` truncates only if ``max_length`` is given
                without padding.
            max_length: the length to pad or truncate to.
            stride: with ``return_overflowing_tokens``, how many tokens consecutive windows share.
            is_split_into_words: the text is already split into words (a list of ``str``).
            pad_to_multiple_of: round the padded length up to a multiple of this.
            padding_side: ``'right'`` or ``'left'``; overrides the tokenizer's ``padding_side``.
            return_tensors: ``'pt'``, ``'tf'``, ``'np'``, ``'jax'`` or None for Python lists.
            return_token_type_ids / return_attention_mask: default to ``model_input_names``.
            return_overflowing_tokens: return the truncated-away tokens (fast tokenizers: as extra
                rows, with ``overflow_to_sample_mapping``).
            return_special_tokens_mask / return_offsets_mapping / return_length: extra fields;
                offsets need a fast tokenizer.
            verbose: emit warnings.
        """
        options = dict(
            add_special_tokens=add_special_tokens,
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            stride=stride,
            is_split_into_words=is_split_into_words,
            pad_to_multiple_of=pad_to_multiple_of,
            padding_side=padding_side,
            return_tensors=return_tensors,
            return_token_type_ids=return_token_type_ids,
            return_attention_mask=return_attention_mask,
            return_overflowing_tokens=return_overflowing_tokens,
            return_special_tokens_mask=return_special_tokens_mask,
            return_offsets_mapping=return_offsets_mapping,
            return_length=return_length,
            verbose=verbose,
            **kwargs,
        )
        if text is None and text_target is None:
            raise ValueError(
                "The tokenizer got no text: pass the text to encode as the first argument, e.g. "
                "tokenizer('Hello world'), or text_target=... for labels."
            )
        encodings = self._call_one(text, text_pair, **options) if text is not None else None
        if text_target is None:
            return encodings
        targets = self._call_one(text_target, text_pair_target, argument="text_target", **options)
        if encodings is None:
            return targets
        encodings["labels"] = targets["input_ids"]
        return encodings

    def _call_one(
        self,
        text: Any,
        text_pair: Any = None,
        *,
        is_split_into_words: bool = False,
        argument: str = "text",
        **options: Any,
    ) -> BatchEncoding:
        pair_argument = f"{argument}_pair" if argument == "text" else "text_pair_target"
        _check_text_input(text, argument, is_split_into_words)
        if text_pair is not None:
            _check_text_input(text_pair, pair_argument, is_split_into_words)

        if is_split_into_words:
            is_batched = isinstance(text, (list, tuple)) and len(text) > 0 and isinstance(text[0], (list, tuple))
        else:
            is_batched = isinstance(text, (list, tuple))

        if not is_batched:
            return self.encode_plus(text, text_pair, is_split_into_words=is_split_into_words, **options)
        if text_pair is not None:
            if isinstance(text_pair, str) or (is_split_into_words and not _is_batch_of_words(text_pair)):
                raise TypeError(
                    f"{argument} is a batch of {len(text)} texts, so {pair_argument} must be a "
                    f"batch (list) of the same length, got a single text: {text_pair!r}. Pass one "
                    f"second text per first text."
                )
            if len(text) != len(text_pair):
                raise ValueError(
                    f"{argument} has {len(text)} texts but {pair_argument} has {len(text_pair)}; "
                    f"pass one second text per first text (the same batch length)."
                )
            batch = list(zip(text, text_pair))
        else:
            batch = list(text)
        return self.batch_encode_plus(batch, is_split_into_words=is_split_into_words, **options)

    def encode_plus(
        self,
        text: TextOrPreTokenized,
        text_pair: TextOrPreTokenized | None = None,
        add_special_tokens: bool = True,
        padding: bool | str | PaddingStrategy = False,
        truncation: bool | str | TruncationStrategy | None = None,
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | TensorType | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
        **kwargs: Any,
    ) -> BatchEncoding:
        """Encode one text or one pair; see :meth:`__call__` for the arguments."""
        padding_strategy, truncation_strategy, max_length, kwargs = self._get_padding_truncation_strategies(
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            verbose=verbose,
            **kwargs,
        )
        self._check_common_arguments(stride, padding_side, return_tensors)
        return self._encode_plus(
            text=text,
            text_pair=text_pair,
            add_special_tokens=add_special_tokens,
            padding_strategy=padding_strategy,
            truncation_strategy=truncation_strategy,
            max_length=max_length,
            stride=stride,
            is_split_into_words=is_split_into_words,
            pad_to_multiple_of=pad_to_multiple_of,
            padding_side=padding_side,
            return_tensors=return_tensors,
            return_token_type_ids=return_token_type_ids,
            return_attention_mask=return_attention_mask,
            return_overflowing_tokens=return_overflowing_tokens,
            return_special_tokens_mask=return_special_tokens_mask,
            return_offsets_mapping=return_offsets_mapping,
            return_length=return_length,
            verbose=verbose,
            **kwargs,
        )

    def batch_encode_plus(
        self,
        batch_text_or_text_pairs: Sequence[TextOrPreTokenized | tuple[TextOrPreTokenized, TextOrPreTokenized]],
        add_special_tokens: bool = True,
        padding: bool | str | PaddingStrategy = False,
        truncation: bool | str | TruncationStrategy | None = None,
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | TensorType | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
        **kwargs: Any,
    ) -> BatchEncoding:
        """Encode a batch of texts or of ``(text, text_pair)`` tuples; see :meth:`__call__`."""
        if not isinstance(batch_text_or_text_pairs, (list, tuple)):
            raise TypeError(
                f"batch_text_or_text_pairs must be a list of texts or of (text, text_pair) tuples, "
                f"got {type(batch_text_or_text_pairs).__name__}. For one text use encode_plus()."
            )
        padding_strategy, truncation_strategy, max_length, kwargs = self._get_padding_truncation_strategies(
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            verbose=verbose,
            **kwargs,
        )
        self._check_common_arguments(stride, padding_side, return_tensors)
        return self._batch_encode_plus(
            batch_text_or_text_pairs=batch_text_or_text_pairs,
            add_special_tokens=add_special_tokens,
            padding_strategy=padding_strategy,
            truncation_strategy=truncation_strategy,
            max_length=max_length,
            stride=stride,
            is_split_into_words=is_split_into_words,
            pad_to_multiple_of=pad_to_multiple_of,
            padding_side=padding_side,
            return_tensors=return_tensors,
            return_token_type_ids=return_token_type_ids,
            return_attention_mask=return_attention_mask,
            return_overflowing_tokens=return_overflowing_tokens,
            return_special_tokens_mask=return_special_tokens_mask,
            return_offsets_mapping=return_offsets_mapping,
            return_length=return_length,
            verbose=verbose,
            **kwargs,
        )

    def _encode_plus(self, **kwargs: Any) -> BatchEncoding:
        raise NotImplementedError

    def _batch_encode_plus(self, **kwargs: Any) -> BatchEncoding:
        raise NotImplementedError

    def encode(
        self,
        text: TextOrPreTokenized,
        text_pair: TextOrPreTokenized | None = None,
        add_special_tokens: bool = True,
        padding: bool | str | PaddingStrategy = False,
        truncation: bool | str | TruncationStrategy | None = None,
        max_length: int | None = None,
        stride: int = 0,
        padding_side: str | None = None,
        return_tensors: str | TensorType | None = None,
        **kwargs: Any,
    ) -> list[int]:
        """The ``input_ids`` of one text or pair (see :meth:`__call__`)."""
        encoded = self.encode_plus(
            text,
            text_pair,
            add_special_tokens=add_special_tokens,
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            stride=stride,
            padding_side=padding_side,
            return_tensors=return_tensors,
            **kwargs,
        )
        return encoded["input_ids"]

    def _check_common_arguments(self, stride: int, padding_side: str | None, return_tensors: Any) -> None:
        if not isinstance(stride, int) or isinstance(stride, bool) or stride < 0:
            raise ValueError(f"stride must be an int >= 0, got {stride!r}.")
        if padding_side is not None:
            self._check_side("padding_side", padding_side)
        if return_tensors is not None:
            _parse_enum(TensorType, return_tensors, "return_tensors", "None or ")

    def _get_padding_truncation_strategies(
        self,
        padding: bool | str | PaddingStrategy = False,
        truncation: bool | str | TruncationStrategy | None = None,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        verbose: bool = True,
        **kwargs: Any,
    ) -> tuple[PaddingStrategy, TruncationStrategy, int | None, dict[str, Any]]:
        """Resolve the padding/truncation arguments the way Transformers v4 does."""
        if max_length is not None and (not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 0):
            raise ValueError(f"max_length must be a non-negative int or None, got {max_length!r}.")
        if pad_to_multiple_of is not None and (not isinstance(pad_to_multiple_of, int) or pad_to_multiple_of <= 0):
            raise ValueError(f"pad_to_multiple_of must be a positive int or None, got {pad_to_multiple_of!r}.")

        # A bare max_length (no padding, no truncation) means "truncate to it".
        if max_length is not None and padding is False and truncation is None:
            if verbose:
                self._warn_once(
                    "truncation-not-explicit",
                    "Truncation was not explicitly activated but `max_length` is provided a specific "
                    "value, please use `truncation=True` to explicitly truncate examples to max "
                    "length. Defaulting to 'longest_first' truncation strategy.",
                )
            truncation = "longest_first"

        if padding is True:
            if verbose and max_length is not None and truncation in (None, False, "do_not_truncate"):
                warnings.warn(
                    "`max_length` is ignored when `padding`=`True` and there is no truncation "
                    "strategy. To pad to max length, use `padding='max_length'`.",
                    stacklevel=3,
                )
            padding_strategy = PaddingStrategy.LONGEST
        elif padding is False or padding is None:
            padding_strategy = PaddingStrategy.DO_NOT_PAD
        else:
            padding_strategy = _parse_enum(PaddingStrategy, padding, "padding", "True, False or ")

        if truncation is True:
            truncation_strategy = TruncationStrategy.LONGEST_FIRST
        elif truncation is False or truncation is None:
            truncation_strategy = TruncationStrategy.DO_NOT_TRUNCATE
        else:
            truncation_strategy = _parse_enum(TruncationStrategy, truncation, "truncation", "True, False or ")

        if max_length is None:
            if padding_strategy == PaddingStrategy.MAX_LENGTH:
                if self.model_max_length > LARGE_INTEGER:
                    if verbose:
                        self._warn_once(
                            "pad-no-max-length",
                            "Asking to pad to max_length but no maximum length is provided and the "
                            "model has no predefined maximum length. Default to no padding.",
                        )
                    padding_strategy = PaddingStrategy.DO_NOT_PAD
                else:
                    max_length = self.model_max_length
            if truncation_strategy != TruncationStrategy.DO_NOT_TRUNCATE:
                if self.model_max_length > LARGE_INTEGER:
                    if verbose:
                        self._warn_once(
                            "truncate-no-max-length",
                            "Asking to truncate to max_length but no maximum length is provided and "
                            "the model has no predefined maximum length. Default to no truncation.",
                        )
                    truncation_strategy = TruncationStrategy.DO_NOT_TRUNCATE
                else:
                    max_length = self.model_max_length

        if padding_strategy != PaddingStrategy.DO_NOT_PAD and (self.pad_token is None or self.pad_token_id is None or self.pad_token_id < 0):
            raise ValueError(
                f"padding={padding!r} needs a padding token, but {type(self).__name__} has none "
                f"(pad_token is None). Set one, e.g. tokenizer.pad_token = tokenizer.eos_token, or "
                f"add one with tokenizer.add_special_tokens({{'pad_token': '[PAD]'}}) (then resize "
                f"the model's embeddings)."
            )
        if (
            truncation_strategy != TruncationStrategy.DO_NOT_TRUNCATE
            and padding_strategy != PaddingStrategy.DO_NOT_PAD
            and pad_to_multiple_of is not None
            and max_length is not None
            and max_length % pad_to_multiple_of != 0
        ):
            raise ValueError(
                f"Truncation and padding are both activated but truncation length ({max_length}) is "
                f"not a multiple of pad_to_multiple_of ({pad_to_multiple_of}); choose a max_length "
                f"that is a multiple of it."
            )
        return padding_strategy, truncation_strategy, max_length, kwargs

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message)

    def _warn_if_too_long(self, ids: list[int], max_length: int | None, verbose: bool) -> None:
        if max_length is None and len(ids) > self.model_max_length and verbose:
            self._warn_once(
                "sequence-too-long",
                f"Token indices sequence length is longer than the specified maximum sequence length "
                f"for this model ({len(ids)} > {self.model_max_length}). Running this sequence "
                f"through the model will result in indexing errors",
            )

    # --- building model inputs from ids (the slow path; also public API for fast) --------------

    def prepare_for_model(
        self,
        ids: list[int],
        pair_ids: list[int] | None = None,
        add_special_tokens: bool = True,
        padding: bool | str | PaddingStrategy = False,
        truncation: bool | str | TruncationStrategy | None = None,
        max_length: int | None = None,
        stride: int = 0,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | TensorType | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
        prepend_batch_axis: bool = False,
        **kwargs: Any,
    ) -> BatchEncoding:
        """Truncate, add special tokens to and pad already-converted ids (one text or one pair)."""
        padding_strategy, truncation_strategy, max_length, kwargs = self._get_padding_truncation_strategies(
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            verbose=verbose,
            **kwargs,
        )
        pair = pair_ids is not None
        if return_overflowing_tokens and truncation_strategy == TruncationStrategy.LONGEST_FIRST and pair:
            raise ValueError(
                "Not possible to return overflowing tokens for pair of sequences with the "
                "`longest_first`. Please select another truncation strategy than `longest_first`, "
                "for instance `only_second` or `only_first`."
            )
        if return_token_type_ids is None:
            return_token_type_ids = "token_type_ids" in self.model_input_names
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names

        total_len = len(ids) + (len(pair_ids) if pair else 0)
        total_len += self.num_special_tokens_to_add(pair=pair) if add_special_tokens else 0
        overflowing_tokens: list[int] = []
        if truncation_strategy != TruncationStrategy.DO_NOT_TRUNCATE and max_length and total_len > max_length:
            ids, pair_ids, overflowing_tokens = self.truncate_sequences(
                ids,
                pair_ids=pair_ids,
                num_tokens_to_remove=total_len - max_length,
                truncation_strategy=truncation_strategy,
                stride=stride,
            )

        encoded: dict[str, Any] = {}
        if return_overflowing_tokens:
            encoded["overflowing_tokens"] = overflowing_tokens
            encoded["num_truncated_tokens"] = total_len - max_length if max_length else 0

        if add_special_tokens:
            sequence = self.build_inputs_with_special_tokens(ids, pair_ids)
            token_type_ids = self.create_token_type_ids_from_sequences(ids, pair_ids)
        else:
            sequence = ids + pair_ids if pair else list(ids)
            token_type_ids = [0] * len(ids) + ([1] * len(pair_ids) if pair else [])
        encoded["input_ids"] = sequence
        if return_token_type_ids:
            encoded["token_type_ids"] = token_type_ids
        if return_special_tokens_mask:
            if add_special_tokens:
                encoded["special_tokens_mask"] = self.get_special_tokens_mask(ids, pair_ids)
            else:
                encoded["special_tokens_mask"] = [0] * len(sequence)
        self._warn_if_too_long(sequence, max_length, verbose)

        if padding_strategy != PaddingStrategy.DO_NOT_PAD or return_attention_mask:
            encoded = self.pad(
                encoded,
                max_length=max_length,
                padding=padding_strategy.value,
                pad_to_multiple_of=pad_to_multiple_of,
                padding_side=padding_side,
                return_attention_mask=return_attention_mask,
            )
        if return_length:
            encoded["length"] = len(encoded["input_ids"])
        return BatchEncoding(encoded, tensor_type=return_tensors, prepend_batch_axis=prepend_batch_axis)

    def truncate_sequences(
        self,
        ids: list[int],
        pair_ids: list[int] | None = None,
        num_tokens_to_remove: int = 0,
        truncation_strategy: str | TruncationStrategy = "longest_first",
        stride: int = 0,
    ) -> tuple[list[int], list[int] | None, list[int]]:
        """Remove ``num_tokens_to_remove`` tokens; returns ``(ids, pair_ids, overflowing_tokens)``.

        ``overflowing_tokens`` are the removed tokens plus ``stride`` tokens of context. For pairs,
        ``longest_first`` splits the budget the way the ``tokenizers`` library does, so slow and
        fast tokenizers truncate identically.
        """
        if num_tokens_to_remove <= 0:
            return ids, pair_ids, []
        strategy = _parse_enum(TruncationStrategy, truncation_strategy, "truncation_strategy", "")
        left = self.truncation_side == "left"

        def cut(sequence: list[int], remove: int) -> tuple[list[int], list[int]]:
            window = min(len(sequence), stride + remove)
            if left:
                return sequence[remove:], sequence[:window]
            return sequence[: len(sequence) - remove], sequence[len(sequence) - window :]

        if strategy == TruncationStrategy.ONLY_FIRST or (strategy == TruncationStrategy.LONGEST_FIRST and pair_ids is None):
            if len(ids) > num_tokens_to_remove:
                ids, overflowing = cut(ids, num_tokens_to_remove)
                return ids, pair_ids, overflowing
            logger.error(
                f"We need to remove {num_tokens_to_remove} to truncate the input but the first "
                f"sequence has a length {len(ids)}. "
                + (
                    f"Please select another truncation strategy than {strategy.value}, for "
                    f"instance 'longest_first' or 'only_second'."
                    if strategy == TruncationStrategy.ONLY_FIRST
                    else ""
                )
            )
            return ids, pair_ids, []

        if strategy == TruncationStrategy.ONLY_SECOND:
            if pair_ids is not None and len(pair_ids) > num_tokens_to_remove:
                pair_ids, overflowing = cut(pair_ids, num_tokens_to_remove)
                return ids, pair_ids, overflowing
            logger.error(
                f"We need to remove {num_tokens_to_remove} to truncate the input but the second "
                f"sequence has a length {len(pair_ids) if pair_ids is not None else 0}. Please "
                f"select another truncation strategy than {strategy.value}, for instance "
                f"'longest_first' or 'only_first'."
            )
            return ids, pair_ids, []

        # longest_first on a pair: keep lengths (n1, n2) chosen like tokenizers' LongestFirst.
        assert pair_ids is not None
        budget = len(ids) + len(pair_ids) - num_tokens_to_remove
        n1, n2 = _longest_first_lengths(len(ids), len(pair_ids), budget)
        if left:
            return ids[len(ids) - n1 :], pair_ids[len(pair_ids) - n2 :], []
        return ids[:n1], pair_ids[:n2], []

    def pad(
        self,
        encoded_inputs: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        padding: bool | str | PaddingStrategy = True,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | TensorType | None = None,
        verbose: bool = True,
    ) -> BatchEncoding:
        """Pad one encoding or a batch (a dict of lists, or a list of dicts) to a common length.

        Tensors are accepted as inputs; the output then uses the same framework unless
        ``return_tensors`` says otherwise.
        """
        if isinstance(encoded_inputs, (list, tuple)) and encoded_inputs and isinstance(encoded_inputs[0], Mapping):
            encoded_inputs = {key: [example[key] for example in encoded_inputs] for key in encoded_inputs[0]}
        if not isinstance(encoded_inputs, Mapping):
            raise TypeError(
                f"pad() takes an encoding (a dict with {self.model_input_names[0]!r}) or a list of "
                f"them, got {type(encoded_inputs).__name__}."
            )
        main_input = self.model_input_names[0]
        if main_input not in encoded_inputs:
            raise ValueError(
                f"pad() needs the field {main_input!r} in the encoding(s), but got the fields "
                f"{list(encoded_inputs.keys())}."
            )
        encoded_inputs = dict(encoded_inputs)
        required_input = encoded_inputs[main_input]
        if required_input is None or (isinstance(required_input, Sequence) and len(required_input) == 0):
            if return_attention_mask:
                encoded_inputs["attention_mask"] = []
            return BatchEncoding(encoded_inputs)

        # Tensors in, tensors (of the same framework) out.
        first = required_input
        while isinstance(first, (list, tuple)) and len(first) > 0:
            first = first[0]
        framework = _tensor_type_of(first) if not isinstance(first, (int, list, tuple)) else None
        if framework is not None or _tensor_type_of(required_input) is not None:
            if return_tensors is None:
                return_tensors = framework or _tensor_type_of(required_input)
            encoded_inputs = {key: to_py_obj(value) for key, value in encoded_inputs.items()}

        padding_strategy, _, max_length, _ = self._get_padding_truncation_strategies(
            padding=padding, max_length=max_length, pad_to_multiple_of=pad_to_multiple_of, verbose=verbose
        )
        if padding_side is not None:
            self._check_side("padding_side", padding_side)

        required_input = encoded_inputs[main_input]
        if required_input and not isinstance(required_input[0], (list, tuple)):
            encoded_inputs = self._pad(
                encoded_inputs,
                max_length=max_length,
                padding_strategy=padding_strategy,
                pad_to_multiple_of=pad_to_multiple_of,
                padding_side=padding_side,
                return_attention_mask=return_attention_mask,
            )
            return BatchEncoding(encoded_inputs, tensor_type=return_tensors)

        batch_size = len(required_input)
        for key, value in encoded_inputs.items():
            if not isinstance(value, (list, tuple)) or len(value) != batch_size:
                got = len(value) if isinstance(value, (list, tuple)) else type(value).__name__
                raise ValueError(
                    f"pad(): every field needs one entry per example; {main_input!r} has "
                    f"{batch_size} but {key!r} has {got}."
                )
        if padding_strategy == PaddingStrategy.LONGEST:
            max_length = max(len(row) for row in required_input)
            padding_strategy = PaddingStrategy.MAX_LENGTH

        batch: dict[str, list[Any]] = {}
        for i in range(batch_size):
            example = self._pad(
                {key: value[i] for key, value in encoded_inputs.items()},
                max_length=max_length,
                padding_strategy=padding_strategy,
                pad_to_multiple_of=pad_to_multiple_of,
                padding_side=padding_side,
                return_attention_mask=return_attention_mask,
            )
            for key, value in example.items():
                batch.setdefault(key, []).append(value)
        return BatchEncoding(batch, tensor_type=return_tensors)

    def _pad(
        self,
        encoded_inputs: dict[str, Any],
        max_length: int | None = None,
        padding_strategy: PaddingStrategy = PaddingStrategy.DO_NOT_PAD,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_attention_mask: bool | None = None,
    ) -> dict[str, Any]:
        """Pad one example (a dict of lists)."""
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        main_input = self.model_input_names[0]
        required_input = encoded_inputs[main_input]
        if padding_strategy == PaddingStrategy.LONGEST:
            max_length = len(required_input)
        if max_length is not None and pad_to_multiple_of is not None and max_length % pad_to_multiple_of != 0:
            max_length = (max_length // pad_to_multiple_of + 1) * pad_to_multiple_of
        if return_attention_mask and "attention_mask" not in encoded_inputs:
            encoded_inputs["attention_mask"] = [1] * len(required_input)

        difference = (max_length or 0) - len(required_input)
        if padding_strategy == PaddingStrategy.DO_NOT_PAD or difference <= 0:
            return encoded_inputs

        fill = {
            main_input: self.pad_token_id,
            "attention_mask": 0,
            "token_type_ids": self.pad_token_type_id,
            "special_tokens_mask": 1,
        }
        side = padding_side or self.padding_side
        for key, value in fill.items():
            if key not in encoded_inputs or (key == "attention_mask" and not return_attention_mask):
                continue
            row = list(encoded_inputs[key])
            encoded_inputs[key] = row + [value] * difference if side == "right" else [value] * difference + row
        return encoded_inputs

    # --- decoding ------------------------------------------------------------------------------

    def decode(
        self,
        token_ids: int | Sequence[int] | Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
        **kwargs: Any,
    ) -> str:
        """Turn ids (a list, or a 1-D tensor/array) back into a string."""
        token_ids = to_py_obj(token_ids)
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        if not isinstance(token_ids, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in token_ids):
            nested = isinstance(token_ids, list) and any(isinstance(t, list) for t in token_ids)
            raise TypeError(
                f"decode() takes one sequence of token ids (ints), got {_describe(token_ids)}."
                + (" For a batch of sequences use batch_decode()." if nested else "")
            )
        return self._decode(
            token_ids,
            skip_special_tokens=skip_special_tokens,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            **kwargs,
        )

    def batch_decode(
        self,
        sequences: Sequence[Sequence[int]] | Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """:meth:`decode` for each sequence of a batch (a list of lists, or a 2-D tensor/array)."""
        return [
            self.decode(
                seq,
                skip_special_tokens=skip_special_tokens,
                clean_up_tokenization_spaces=clean_up_tokenization_spaces,
                **kwargs,
            )
            for seq in to_py_obj(sequences)
        ]

    def _decode(self, token_ids: list[int], skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool | None = None, **kwargs: Any) -> str:
        raise NotImplementedError

    def _clean_up_if_asked(self, text: str, clean_up_tokenization_spaces: bool | None) -> str:
        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = self.clean_up_tokenization_spaces
        return self.clean_up_tokenization(text) if clean_up_tokenization_spaces else text

    @staticmethod
    def clean_up_tokenization(out_string: str) -> str:
        """Remove the spaces that tokenization put before punctuation and English contractions."""
        for spaced, joined in (
            (" .", "."),
            (" ?", "?"),
            (" !", "!"),
            (" ,", ","),
            (" ' ", "'"),
            (" n't", "n't"),
            (" 'm", "'m"),
            (" 's", "'s"),
            (" 've", "'ve"),
            (" 're", "'re"),
        ):
            out_string = out_string.replace(spaced, joined)
        return out_string

    # --- loading and saving --------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, *init_inputs: Any, **kwargs: Any
    ) -> PreTrainedTokenizerBase:
        """Load a tokenizer from a directory written by ``save_pretrained`` (ours or Transformers')
        or from a hub repo id.

        Hub arguments (``cache_dir``, ``revision``, ``local_files_only``, ``token``, ``subfolder``,
        ...) select the files; loader flags Transformers accepts (``use_fast``,
        ``trust_remote_code``, ...) are ignored; every other keyword argument overrides the saved
        ``tokenizer_config.json`` and goes to ``__init__`` (``model_max_length``, special tokens,
        ``do_lower_case``, ...).
        """
        hub_kwargs = pop_hub_kwargs(kwargs)
        for key in _LOADER_ONLY_KEYS:
            kwargs.pop(key, None)

        filenames = {
            **cls.vocab_files_names,
            "added_tokens_file": ADDED_TOKENS_FILE,
            "special_tokens_map_file": SPECIAL_TOKENS_MAP_FILE,
            "tokenizer_config_file": TOKENIZER_CONFIG_FILE,
        }
        resolved = {
            file_id: resolve_file(pretrained_model_name_or_path, filename, **hub_kwargs)
            for file_id, filename in filenames.items()
        }
        if not any(resolved[file_id] for file_id in cls.vocab_files_names):
            wanted = " or ".join(repr(name) for name in cls.vocab_files_names.values())
            raise OSError(
                f"Can't load a {cls.__name__} from {os.fspath(pretrained_model_name_or_path)!r}: it "
                f"has no {wanted}. Pass a directory written by save_pretrained (by polyformers or "
                f"Transformers), or the id of a hub repo that holds a tokenizer."
            )
        try:
            return cls._from_pretrained(dict(resolved), pretrained_model_name_or_path, init_inputs, **kwargs)
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
            # A value of the wrong type in tokenizer_config.json, special_tokens_map.json or
            # added_tokens.json: say which files the tokenizer was built from.
            files = [os.path.basename(f) for f in resolved.values() if f]
            raise ValueError(
                f"Cannot build a {cls.__name__} from {os.fspath(pretrained_model_name_or_path)!r} "
                f"(files {', '.join(files)}): {type(exc).__name__}: {exc}. A value in one of these files "
                f"has the wrong type, or an argument given does; fix it, or re-create the files with save_pretrained()."
            ) from exc

    @classmethod
    def _from_pretrained(
        cls,
        resolved_files: dict[str, str | None],
        pretrained_model_name_or_path: str | os.PathLike,
        init_inputs: tuple,
        **kwargs: Any,
    ) -> PreTrainedTokenizerBase:
        config_file = resolved_files.pop("tokenizer_config_file", None)
        init_kwargs: dict[str, Any] = _read_json(config_file) if config_file else {}
        for key in _LOADER_ONLY_KEYS:
            init_kwargs.pop(key, None)
        saved_inputs = tuple(init_kwargs.pop("init_inputs", ()))
        init_inputs = init_inputs or saved_inputs
        init_kwargs = _added_token_from_json(init_kwargs)
        init_kwargs.update(kwargs)
        for file_id in cls.vocab_files_names:  # the files found win over paths saved in the config
            if file_id not in kwargs:
                init_kwargs[file_id] = resolved_files.get(file_id)
        init_kwargs["name_or_path"] = os.fspath(pretrained_model_name_or_path)

        added_tokens_decoder: dict[int, AddedToken] = {}
        if "added_tokens_decoder" in init_kwargs:
            for index, token in (init_kwargs["added_tokens_decoder"] or {}).items():
                if isinstance(token, dict):
                    token = AddedToken(**{k: v for k, v in token.items() if k != "__type"})
                if not isinstance(token, AddedToken):
                    raise ValueError(
                        f"{config_file}: added_tokens_decoder[{index!r}] must be a dict of "
                        f"AddedToken fields, got {token!r}."
                    )
                added_tokens_decoder[int(index)] = token
        else:
            # Older layout: special tokens in special_tokens_map.json, added tokens in added_tokens.json.
            map_file = resolved_files.get("special_tokens_map_file")
            for key, value in (_read_json(map_file) if map_file else {}).items():
                if key not in cls.SPECIAL_TOKENS_ATTRIBUTES:
                    continue  # only special tokens are read from this file, never file paths or options
                if kwargs.get(key):
                    continue  # the caller's value wins
                if isinstance(value, dict):
                    value = AddedToken(**{**{k: v for k, v in value.items() if k != "__type"}, "special": True})
                elif key == "additional_special_tokens" and isinstance(value, list):
                    value = [
                        AddedToken(**{**{k: v for k, v in t.items() if k != "__type"}, "special": True})
                        if isinstance(t, dict)
                        else t
                        for t in value
                    ]
                init_kwargs[key] = value
            added_file = resolved_files.get("added_tokens_file")
            if added_file:
                special = {str(t) for key in cls.SPECIAL_TOKENS_ATTRIBUTES for t in _as_list(init_kwargs.get(key))}
                for content, index in _read_json(added_file).items():
                    is_special = content in special
                    added_tokens_decoder[int(index)] = AddedToken(content, normalized=not is_special, special=is_special)
        init_kwargs["added_tokens_decoder"] = added_tokens_decoder

        # Special tokens given as strings take the flags (lstrip, normalized, ...) recorded for them.
        by_content = {token.content: token for token in added_tokens_decoder.values()}
        for key in cls.SPECIAL_TOKENS_ATTRIBUTES:
            value = init_kwargs.get(key)
            if key != "additional_special_tokens" and isinstance(value, str) and value in by_content:
                init_kwargs[key] = by_content[value]

        tokenizer = cls(*init_inputs, **init_kwargs)
        tokenizer.init_inputs = init_inputs
        return tokenizer

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        legacy_format: bool | None = None,
        filename_prefix: str | None = None,
        push_to_hub: bool = False,
        **kwargs: Any,
    ) -> tuple[str, ...]:
        """Write the tokenizer to ``save_directory`` so that this library and Transformers load it.

        Writes ``tokenizer_config.json``, ``special_tokens_map.json``, the vocabulary files
        (``vocab.txt`` for WordPiece) and, for fast tokenizers, ``tokenizer.json``. Each file is
        written under a temporary name and renamed, so an interrupted save leaves no half file.
        Returns the paths written.
        """
        if push_to_hub:
            raise NotImplementedError(
                "push_to_hub=True is not supported: save_pretrained() to a directory, then upload "
                "it with huggingface_hub (HfApi().upload_folder)."
            )
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise OSError(f"save_pretrained needs a directory, but {save_directory!r} is a file.")
        os.makedirs(save_directory, exist_ok=True)
        prefix = f"{filename_prefix}-" if filename_prefix else ""

        config_path = os.path.join(save_directory, prefix + TOKENIZER_CONFIG_FILE)
        atomic_write_text(config_path, _to_json(self._tokenizer_config()))
        map_path = os.path.join(save_directory, prefix + SPECIAL_TOKENS_MAP_FILE)
        special_tokens = {
            key: [_token_state(t) for t in value] if isinstance(value, list) else _token_state(value)
            for key, value in self.special_tokens_map_extended.items()
        }
        atomic_write_text(map_path, _to_json(special_tokens))
        written = (config_path, map_path) + self._save_pretrained(save_directory, filename_prefix, legacy_format)
        logger.info("Tokenizer saved to %s", save_directory)
        return written

    def _tokenizer_config(self) -> dict[str, Any]:
        """The content of ``tokenizer_config.json``, laid out like Transformers writes it."""
        config = {
            key: value
            for key, value in copy.deepcopy(self.init_kwargs).items()
            if key not in _LOADER_ONLY_KEYS and key not in self.vocab_files_names
        }
        for private in ("name_or_path", "special_tokens_map_file", "tokenizer_file", "added_tokens_decoder", "init_inputs"):
            config.pop(private, None)
        config["model_max_length"] = self.model_max_length
        config["clean_up_tokenization_spaces"] = self.clean_up_tokenization_spaces
        if self.padding_side != type(self).padding_side or "padding_side" in config:
            config["padding_side"] = self.padding_side
        if self.truncation_side != type(self).truncation_side or "truncation_side" in config:
            config["truncation_side"] = self.truncation_side
        config.pop("additional_special_tokens", None)
        config.update(self.special_tokens_map)
        if self.init_inputs:
            config["init_inputs"] = list(self.init_inputs)
        config = _added_token_to_json(config)
        config["added_tokens_decoder"] = {
            str(index): token.__getstate__() for index, token in self.added_tokens_decoder.items()
        }
        name = type(self).__name__
        config["tokenizer_class"] = name[: -len("Fast")] if name.endswith("Fast") and name != "PreTrainedTokenizerFast" else name
        return config

    @property
    def added_tokens_decoder(self) -> dict[int, AddedToken]:
        raise NotImplementedError

    def _save_pretrained(
        self, save_directory: str, filename_prefix: str | None, legacy_format: bool | None
    ) -> tuple[str, ...]:
        raise NotImplementedError

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        """Write only the vocabulary files; returns their paths."""
        raise NotImplementedError


# --- helpers -----------------------------------------------------------------------------------


def _longest_first_lengths(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """How many tokens of each sequence ``longest_first`` keeps, the way ``tokenizers`` decides:
    the longer sequence loses tokens first; once both are at half the budget they lose in turn,
    the second sequence keeping the odd token."""
    budget = max(budget, 0)
    short, long = sorted((len_a, len_b))
    if short > budget:
        long = short
    else:
        long = max(short, budget - short)
    if short + long > budget:
        short = budget // 2
        long = short + budget % 2
    if len_a > len_b:
        return long, short
    return short, long


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{type(value).__name__} {text}"


def _is_batch_of_words(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(words, (list, tuple)) for words in value)


def _check_text_input(text: Any, argument: str, is_split_into_words: bool) -> None:
    """Raise a TypeError naming ``argument`` unless ``text`` has one of the accepted shapes:
    str, list of str, list of lists of str (and ids given as lists of ints, for ``encode``)."""
    accepted = (
        f"{argument} must be a str (one text), a list of str (a batch of texts, or one "
        f"pre-tokenized text with is_split_into_words=True) or a list of lists of str (a batch of "
        f"pre-tokenized texts)"
    )
    if isinstance(text, str):
        if is_split_into_words:
            raise TypeError(
                f"{accepted}; with is_split_into_words=True a text must be a list of words, got a "
                f"str {text!r}. Pass text.split(), or drop is_split_into_words."
            )
        return
    if not isinstance(text, (list, tuple)):
        raise TypeError(f"{accepted}; got {_describe(text)}. Convert it to a str first (e.g. str(x)).")
    for i, item in enumerate(text):
        if isinstance(item, str):
            continue
        if isinstance(item, (list, tuple)):
            for j, word in enumerate(item):
                if not isinstance(word, str):
                    raise TypeError(f"{accepted}; {argument}[{i}][{j}] is {_describe(word)}.")
            continue
        if item is None:
            raise TypeError(
                f"{accepted}; {argument}[{i}] is None. Replace missing texts by '' or drop them."
            )
        raise TypeError(f"{accepted}; {argument}[{i}] is {_describe(item)}.")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _token_state(token: str | AddedToken) -> str | dict[str, Any]:
    """How Transformers writes a special token to ``special_tokens_map.json``."""
    if isinstance(token, AddedToken):
        state = token.__getstate__()
        state.pop("special", None)
        return state
    return token


def _read_json(path: str) -> dict[str, Any]:
    return read_json_file(path, OSError)


def _to_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
