"""Fast tokenizers: a thin layer over a ``tokenizers.Tokenizer`` (the Rust "backend").

:class:`PreTrainedTokenizerFast` loads the backend from ``tokenizer.json``, or asks the subclass to
build one (``_build_backend``) from the slow files such as ``vocab.txt``. Every encode call sets
the backend's truncation and padding for that call only and restores them afterwards, so the
settings stored in ``tokenizer.json`` never leak into results (as in Transformers, where each call
sets them explicitly) and are written back unchanged by ``save_pretrained``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import tokenizers
from tokenizers import Encoding, Tokenizer

from polyformers.io_utils import atomic_write_text
from polyformers.tokenization_utils_base import (
    ADDED_TOKENS_FILE,
    FULL_TOKENIZER_FILE,
    AddedToken,
    BatchEncoding,
    PaddingStrategy,
    PreTrainedTokenizerBase,
    TensorType,
    TruncationStrategy,
)

if TYPE_CHECKING:
    from polyformers.tokenization_utils import PreTrainedTokenizer

logger = logging.getLogger(__name__)

__all__ = ["PreTrainedTokenizerFast"]


def _to_backend_token(token: AddedToken | str, special: bool) -> tokenizers.AddedToken | str:
    if isinstance(token, str):
        return token
    return tokenizers.AddedToken(
        token.content,
        single_word=token.single_word,
        lstrip=token.lstrip,
        rstrip=token.rstrip,
        normalized=token.normalized,
        special=token.special or special,
    )


def _from_backend_token(token: tokenizers.AddedToken) -> AddedToken:
    return AddedToken(**token.__getstate__())


def _backend_from_file(tokenizer_file: str) -> Tokenizer:
    """``Tokenizer.from_file``, with the backend's bare ``Exception`` (or a Rust panic) turned into an OSError naming the file."""
    try:
        return Tokenizer.from_file(tokenizer_file)
    except Exception as exc:  # the backend raises bare Exceptions ("EOF while parsing ...")
        cause: BaseException = exc
    except BaseException as exc:  # a Rust panic surfaces as pyo3's PanicException
        if type(exc).__name__ != "PanicException":
            raise
        cause = exc
    raise OSError(
        f"Cannot read the tokenizer file {tokenizer_file!r}: {cause}. It is truncated, corrupt or "
        f"not a tokenizer.json; download it again or re-create it with save_pretrained()."
    ) from cause


class PreTrainedTokenizerFast(PreTrainedTokenizerBase):
    """Base class of the tokenizers backed by the ``tokenizers`` library.

    Args:
        tokenizer_object: a ready ``tokenizers.Tokenizer`` (copied).
        tokenizer_file: a ``tokenizer.json`` to load.
        from_slow: ignore ``tokenizer_file`` and build the backend from the slow files.
        slow_tokenizer: a slow tokenizer to build the backend from (its init arguments are used).
        **kwargs: as for :class:`PreTrainedTokenizerBase`, plus the subclass's arguments, which
            ``_build_backend`` receives.
    """

    vocab_files_names: dict[str, str] = {"tokenizer_file": FULL_TOKENIZER_FILE}

    def __init__(
        self,
        *,
        tokenizer_object: Tokenizer | None = None,
        tokenizer_file: str | None = None,
        from_slow: bool = False,
        slow_tokenizer: PreTrainedTokenizer | None = None,
        **kwargs: Any,
    ) -> None:
        added_tokens_decoder = kwargs.pop("added_tokens_decoder", None) or {}
        if slow_tokenizer is not None:
            kwargs = {**kwargs, **slow_tokenizer.init_kwargs}  # the slow tokenizer's options win
            added_tokens_decoder = {**slow_tokenizer.added_tokens_decoder, **added_tokens_decoder}
        if tokenizer_object is not None:
            backend = copy.deepcopy(tokenizer_object)
        elif tokenizer_file is not None and not from_slow:
            backend = _backend_from_file(tokenizer_file)
        else:
            backend = self._build_backend(slow_tokenizer=slow_tokenizer, **kwargs)
        self._tokenizer: Tokenizer = backend

        # tokenizer.json may store padding/truncation settings: they give a few defaults.
        if backend.padding is not None:
            kwargs.setdefault("pad_token", backend.padding["pad_token"])
            kwargs.setdefault("padding_side", backend.padding["direction"])
        if backend.truncation is not None:
            kwargs.setdefault("truncation_side", backend.truncation["direction"])
        kwargs.setdefault("tokenizer_file", tokenizer_file)
        super().__init__(**kwargs)
        if backend.padding is not None:
            self._pad_token_type_id = backend.padding["pad_type_id"]
        self._tokenizer.encode_special_tokens = self.split_special_tokens

        # Register the tokens that the config knows as added or special but the backend does not.
        known = set(self.added_tokens_encoder)
        to_add: list[AddedToken] = []
        for _, token in sorted(added_tokens_decoder.items()):
            if isinstance(token, str):
                token = AddedToken(token)
            if token.content not in known:
                to_add.append(token)
                known.add(token.content)
        special_tokens = set(self.all_special_tokens)
        for token in self.all_special_tokens_extended:
            if str(token) not in known:
                to_add.append(token if isinstance(token, AddedToken) else AddedToken(token, special=True))
                known.add(str(token))
        for token in to_add:
            if token.content in special_tokens:
                token.special = True
        if to_add:
            self._add_tokens(to_add)

    def _build_backend(self, slow_tokenizer: PreTrainedTokenizer | None = None, **init_kwargs: Any) -> Tokenizer:
        """Build the ``tokenizers.Tokenizer`` when there is no ``tokenizer.json``.

        Subclasses override this to build their model's pipeline from the slow files (e.g. a
        WordPiece model from ``vocab.txt``) or from ``slow_tokenizer``; ``init_kwargs`` are the
        arguments given to ``__init__``.
        """
        raise ValueError(
            f"{type(self).__name__} needs a backend: pass tokenizer_file= (a tokenizer.json), "
            f"tokenizer_object= (a tokenizers.Tokenizer), or load a directory that holds a "
            f"tokenizer.json with from_pretrained()."
        )

    # --- vocabulary ----------------------------------------------------------------------------

    @property
    def is_fast(self) -> bool:
        return True

    @property
    def backend_tokenizer(self) -> Tokenizer:
        """The ``tokenizers.Tokenizer`` doing the work."""
        return self._tokenizer

    @property
    def decoder(self) -> Any:
        return self._tokenizer.decoder

    @property
    def vocab_size(self) -> int:
        """The size of the base vocabulary, without added tokens."""
        return self._tokenizer.get_vocab_size(with_added_tokens=False)

    def get_vocab(self) -> dict[str, int]:
        return self._tokenizer.get_vocab(with_added_tokens=True)

    @property
    def vocab(self) -> dict[str, int]:
        return self.get_vocab()

    def __len__(self) -> int:
        """The full vocabulary size, added tokens included."""
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    @property
    def added_tokens_decoder(self) -> dict[int, AddedToken]:
        return {index: _from_backend_token(token) for index, token in sorted(self._tokenizer.get_added_tokens_decoder().items())}

    @property
    def added_tokens_encoder(self) -> dict[str, int]:
        return {token.content: index for index, token in self.added_tokens_decoder.items()}

    def get_added_vocab(self) -> dict[str, int]:
        return self.added_tokens_encoder

    def _add_tokens(self, new_tokens: list[str | AddedToken], special_tokens: bool = False) -> int:
        backend_tokens = [_to_backend_token(token, special_tokens) for token in new_tokens]
        if special_tokens:
            return self._tokenizer.add_special_tokens(backend_tokens)
        return self._tokenizer.add_tokens(backend_tokens)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return self._tokenizer.num_special_tokens_to_add(pair)

    def convert_tokens_to_ids(self, tokens: str | Sequence[str] | None) -> int | list[int] | None:
        if tokens is None:
            return None
        if isinstance(tokens, str):
            return self._convert_token_to_id_with_added_voc(tokens)
        return [self._convert_token_to_id_with_added_voc(token) for token in tokens]

    def _convert_token_to_id_with_added_voc(self, token: str) -> int | None:
        index = self._tokenizer.token_to_id(token)
        if index is None:
            return self.unk_token_id
        return index

    def _convert_id_to_token(self, index: int) -> str | None:
        return self._tokenizer.id_to_token(int(index))

    def convert_ids_to_tokens(self, ids: int | Sequence[int], skip_special_tokens: bool = False) -> str | list[str]:
        if isinstance(ids, int):
            return self._tokenizer.id_to_token(ids)
        special_ids = set(self.all_special_ids) if skip_special_tokens else set()
        return [self._tokenizer.id_to_token(int(index)) for index in ids if int(index) not in special_ids]

    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False, **kwargs: Any) -> list[str]:
        if not isinstance(text, str):
            raise TypeError(f"tokenize() takes a str, got {type(text).__name__}: {text!r}.")
        return self.encode_plus(text, pair, add_special_tokens=add_special_tokens, **kwargs).tokens()

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        if self._tokenizer.decoder is None:
            return " ".join(tokens)
        return self._tokenizer.decoder.decode(tokens)

    # --- encoding ------------------------------------------------------------------------------

    def set_truncation_and_padding(
        self,
        padding_strategy: PaddingStrategy,
        truncation_strategy: TruncationStrategy,
        max_length: int | None,
        stride: int,
        pad_to_multiple_of: int | None,
        padding_side: str | None = None,
    ) -> None:
        """Configure the backend's truncation and padding (for the next encode call)."""
        backend = self._tokenizer
        if truncation_strategy == TruncationStrategy.DO_NOT_TRUNCATE:
            backend.no_truncation()
        else:
            backend.enable_truncation(
                max_length, stride=stride, strategy=truncation_strategy.value, direction=self.truncation_side
            )
        if padding_strategy == PaddingStrategy.DO_NOT_PAD:
            backend.no_padding()
        else:
            backend.enable_padding(
                length=max_length if padding_strategy == PaddingStrategy.MAX_LENGTH else None,
                direction=padding_side or self.padding_side,
                pad_id=self.pad_token_id,
                pad_type_id=self.pad_token_type_id,
                pad_token=self.pad_token,
                pad_to_multiple_of=pad_to_multiple_of,
            )

    @contextlib.contextmanager
    def _backend_settings(self, **settings: Any) -> Iterator[None]:
        """Apply :meth:`set_truncation_and_padding` for one call, then restore the backend."""
        backend = self._tokenizer
        saved_truncation, saved_padding = backend.truncation, backend.padding
        self.set_truncation_and_padding(**settings)
        try:
            yield
        finally:
            if saved_truncation is None:
                backend.no_truncation()
            else:
                backend.enable_truncation(**saved_truncation)
            if saved_padding is None:
                backend.no_padding()
            else:
                backend.enable_padding(**saved_padding)

    def _check_stride(self, truncation_strategy: TruncationStrategy, max_length: int | None, stride: int, add_special_tokens: bool, pair: bool) -> None:
        # The backend panics (an uncatchable-looking Rust error) when the stride does not fit.
        if truncation_strategy == TruncationStrategy.DO_NOT_TRUNCATE or not stride or max_length is None:
            return
        room = max_length - (self.num_special_tokens_to_add(pair) if add_special_tokens else 0)
        if not pair and stride >= room:
            raise ValueError(
                f"stride={stride} must be smaller than the tokens that fit in one window: "
                f"max_length={max_length} minus {max_length - room} special tokens = {room}. Use a "
                f"smaller stride or a larger max_length."
            )

    def _convert_encoding(
        self,
        encoding: Encoding,
        fields: list[str],
        return_overflowing_tokens: bool,
    ) -> tuple[dict[str, list[Any]], list[Encoding]]:
        """The requested fields of one encoding (and of its overflowing windows, if asked)."""
        encodings = [encoding] + (encoding.overflowing if return_overflowing_tokens else [])
        getters = {
            "input_ids": lambda e: e.ids,
            "token_type_ids": lambda e: e.type_ids,
            "attention_mask": lambda e: e.attention_mask,
            "special_tokens_mask": lambda e: e.special_tokens_mask,
            "offset_mapping": lambda e: e.offsets,
            "length": lambda e: len(e.ids),
        }
        return {field: [getters[field](e) for e in encodings] for field in fields}, encodings

    def _batch_encode_plus(
        self,
        batch_text_or_text_pairs: Sequence[Any],
        add_special_tokens: bool = True,
        padding_strategy: PaddingStrategy = PaddingStrategy.DO_NOT_PAD,
        truncation_strategy: TruncationStrategy = TruncationStrategy.DO_NOT_TRUNCATE,
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
        split_special_tokens: bool | None = None,
        **kwargs: Any,
    ) -> BatchEncoding:
        if kwargs:
            logger.warning("Keyword arguments %s not recognized.", kwargs)
        if return_token_type_ids is None:
            return_token_type_ids = "token_type_ids" in self.model_input_names
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        fields = ["input_ids"]
        fields += ["token_type_ids"] if return_token_type_ids else []
        fields += ["attention_mask"] if return_attention_mask else []
        fields += ["special_tokens_mask"] if return_special_tokens_mask else []
        fields += ["offset_mapping"] if return_offsets_mapping else []
        fields += ["length"] if return_length else []

        batch = [tuple(item) if isinstance(item, list) and not is_split_into_words else item for item in batch_text_or_text_pairs]
        has_pairs = any(_is_pair(item, is_split_into_words) for item in batch)
        self._check_stride(truncation_strategy, max_length, stride, add_special_tokens, has_pairs)

        if split_special_tokens is not None and split_special_tokens != self._tokenizer.encode_special_tokens:
            self._tokenizer.encode_special_tokens = split_special_tokens
        try:
            with self._backend_settings(
                padding_strategy=padding_strategy,
                truncation_strategy=truncation_strategy,
                max_length=max_length,
                stride=stride,
                pad_to_multiple_of=pad_to_multiple_of,
                padding_side=padding_side,
            ):
                encodings = self._encode_with_backend(batch, add_special_tokens, is_split_into_words)
        finally:
            self._tokenizer.encode_special_tokens = self.split_special_tokens

        data: dict[str, list[Any]] = {field: [] for field in fields}
        all_encodings: list[Encoding] = []
        sample_mapping: list[int] = []
        for i, encoding in enumerate(encodings):
            rows, row_encodings = self._convert_encoding(encoding, fields, return_overflowing_tokens)
            for field in fields:
                data[field].extend(rows[field])
            all_encodings.extend(row_encodings)
            sample_mapping.extend([i] * len(row_encodings))
        if return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = sample_mapping
        for ids in data["input_ids"]:
            self._warn_if_too_long(ids, max_length, verbose)
        return BatchEncoding(data, all_encodings, tensor_type=return_tensors)

    def _encode_with_backend(self, batch: list[Any], add_special_tokens: bool, is_split_into_words: bool) -> list[Encoding]:
        try:
            return self._tokenizer.encode_batch(batch, add_special_tokens=add_special_tokens, is_pretokenized=is_split_into_words)
        except Exception as exc:  # the backend raises bare Exceptions
            raise ValueError(f"The tokenizers backend could not encode the input: {exc}") from exc
        except BaseException as exc:  # a Rust panic surfaces as pyo3's PanicException
            if type(exc).__name__ != "PanicException":
                raise
            raise ValueError(
                f"The tokenizers backend failed on this input: {exc}. With stride, make sure the "
                f"stride is smaller than the room left for each truncated sequence."
            ) from exc

    def _encode_plus(
        self,
        text: Any,
        text_pair: Any = None,
        add_special_tokens: bool = True,
        padding_strategy: PaddingStrategy = PaddingStrategy.DO_NOT_PAD,
        truncation_strategy: TruncationStrategy = TruncationStrategy.DO_NOT_TRUNCATE,
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
        _check_single_input(text, "text", is_split_into_words)
        if text_pair is not None:
            _check_single_input(text_pair, "text_pair", is_split_into_words)
        # Unlike Transformers' fast tokenizers, an empty text_pair ('') still makes a pair, as it
        # does for slow tokenizers and for batches.
        item = (text, text_pair) if text_pair is not None else text
        batched = self._batch_encode_plus(
            [item],
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
        # One text without overflow: drop the batch dimension (tensors keep it, as in Transformers).
        if return_tensors is None and not return_overflowing_tokens:
            batched = BatchEncoding(
                {key: value[0] if value and isinstance(value[0], list) else value for key, value in batched.items()},
                batched.encodings,
            )
        return batched

    # --- decoding ------------------------------------------------------------------------------

    def _decode(
        self,
        token_ids: list[int],
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
        **kwargs: Any,
    ) -> str:
        text = self._tokenizer.decode(token_ids, skip_special_tokens=skip_special_tokens)
        return self._clean_up_if_asked(text, clean_up_tokenization_spaces)

    # --- saving --------------------------------------------------------------------------------

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        """Write the slow tokenizer's vocabulary files, if this class knows how (none by default)."""
        return ()

    def _save_pretrained(
        self, save_directory: str, filename_prefix: str | None, legacy_format: bool | None
    ) -> tuple[str, ...]:
        """``tokenizer.json``, plus the slow files unless ``legacy_format=False`` (Transformers' rule)."""
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        written: tuple[str, ...] = ()
        if legacy_format is None or legacy_format:
            written += tuple(self.save_vocabulary(save_directory, filename_prefix=filename_prefix))
            beyond_vocab = {token: index for token, index in self.added_tokens_encoder.items() if index >= self.vocab_size}
            if beyond_vocab:
                path = os.path.join(save_directory, prefix + ADDED_TOKENS_FILE)
                atomic_write_text(path, json.dumps(beyond_vocab, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
                written += (path,)
        if not legacy_format:
            path = os.path.join(save_directory, prefix + FULL_TOKENIZER_FILE)
            atomic_write_text(path, self._tokenizer.to_str())
            written += (path,)
        return written


def _is_pair(item: Any, is_split_into_words: bool) -> bool:
    if not isinstance(item, (list, tuple)):
        return False
    if is_split_into_words:
        return len(item) > 0 and isinstance(item[0], (list, tuple))
    return True


def _check_single_input(text: Any, argument: str, is_split_into_words: bool) -> None:
    if is_split_into_words:
        ok = isinstance(text, (list, tuple)) and all(isinstance(word, str) for word in text)
        expected = "a list of words (str)"
    else:
        ok = isinstance(text, str)
        expected = "a str"
    if not ok:
        raise TypeError(
            f"{argument} must be {expected} for a fast tokenizer, got {type(text).__name__}: "
            f"{text!r:.80}. Fast tokenizers take text, not ids; for ids use prepare_for_model()."
        )
