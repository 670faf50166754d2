"""Slow tokenizers: tokenization written in Python, one subclass per model family.

:class:`PreTrainedTokenizer` handles what every slow tokenizer shares: added tokens (split out of
the text before the model's own tokenization runs), ids <-> tokens, and turning texts into model
inputs through :meth:`~PreTrainedTokenizerBase.prepare_for_model`. A subclass implements
``_tokenize``, ``_convert_token_to_id``, ``_convert_id_to_token``, ``vocab_size``, ``get_vocab``
and ``save_vocabulary``.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
from collections.abc import Sequence
from typing import Any

from polyformers.io_utils import atomic_write_text
from polyformers.tokenization_utils_base import (
    ADDED_TOKENS_FILE,
    AddedToken,
    BatchEncoding,
    PaddingStrategy,
    PreTrainedTokenizerBase,
    TensorType,
    TruncationStrategy,
)

logger = logging.getLogger(__name__)

__all__ = ["PreTrainedTokenizer", "Trie"]


class Trie:
    """Splits text around a set of added tokens, longest match first.

    Named after (and with the ``add``/``split`` API of) Transformers' ``Trie``. Matching is done by
    one compiled regular expression whose alternatives are ordered longest first: at each position
    the regex engine tries them in order, which gives the same leftmost-longest split.
    """

    def __init__(self, *words: str) -> None:
        self._words: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for word in words:
            self.add(word)

    def add(self, word: str) -> None:
        if word and word not in self._words:
            self._words.add(word)
            self._pattern = None

    def split(self, text: str) -> list[str]:
        """``text`` cut before and after every match; the pieces concatenate back to ``text``.

        >>> Trie("[CLS]", "extra_id_1", "extra_id_100").split("[CLS] This is a extra_id_100")
        ['[CLS]', ' This is a ', 'extra_id_100']
        """
        if not self._words:
            return [text]
        if self._pattern is None:
            alternatives = sorted(self._words, key=lambda w: (-len(w), w))
            self._pattern = re.compile("|".join(re.escape(w) for w in alternatives))
        pieces: list[str] = []
        start = 0
        for match in self._pattern.finditer(text):
            if match.start() > start:
                pieces.append(text[start : match.start()])
            pieces.append(match.group())
            start = match.end()
        if start < len(text) or not pieces:
            pieces.append(text[start:])
        return pieces


class PreTrainedTokenizer(PreTrainedTokenizerBase):
    """Base class of the pure-Python ("slow") tokenizers.

    Keyword arguments are those of :class:`PreTrainedTokenizerBase`, plus ``added_tokens_decoder``
    (``{id: AddedToken}``, as saved in ``tokenizer_config.json``).
    """

    def __init__(self, **kwargs: Any) -> None:
        self.tokens_trie = Trie()
        self._added_tokens_decoder: dict[int, AddedToken] = {}
        for index, token in (kwargs.pop("added_tokens_decoder", None) or {}).items():
            if isinstance(token, str):
                token = AddedToken(token)
            self._added_tokens_decoder[int(index)] = token
        self._added_tokens_encoder = {token.content: index for index, token in self._added_tokens_decoder.items()}
        super().__init__(**kwargs)
        # Special tokens are added tokens too: they must never be split by _tokenize.
        self._add_tokens(
            [t for t in self.all_special_tokens_extended if str(t) not in self._added_tokens_encoder],
            special_tokens=True,
        )
        self._update_trie()

    @property
    def is_fast(self) -> bool:
        return False

    @property
    def added_tokens_encoder(self) -> dict[str, int]:
        """``{content: id}`` of the added tokens (special tokens included), by id."""
        return {token: index for token, index in sorted(self._added_tokens_encoder.items(), key=lambda kv: kv[1])}

    @property
    def added_tokens_decoder(self) -> dict[int, AddedToken]:
        """``{id: AddedToken}`` of the added tokens (special tokens included), by id."""
        return dict(sorted(self._added_tokens_decoder.items()))

    @added_tokens_decoder.setter
    def added_tokens_decoder(self, value: dict[int, AddedToken | str]) -> None:
        for index, token in value.items():
            if not isinstance(token, (str, AddedToken)) or not isinstance(index, int):
                raise TypeError(
                    f"added_tokens_decoder maps int ids to str or AddedToken, got {index!r}: {token!r}."
                )
            token = AddedToken(token) if isinstance(token, str) else token
            self._added_tokens_decoder[index] = token
            self._added_tokens_encoder[token.content] = index
        self._update_trie()

    def get_added_vocab(self) -> dict[str, int]:
        return dict(self._added_tokens_encoder)

    def __len__(self) -> int:
        """The full vocabulary size, added tokens included (``vocab_size`` excludes them)."""
        return len(set(self.get_vocab().keys()))

    def _add_tokens(self, new_tokens: list[str | AddedToken], special_tokens: bool = False) -> int:
        added = 0
        if not new_tokens:
            return added
        vocab = self.get_vocab().copy()
        next_index = len(vocab)
        for token in new_tokens:
            if not isinstance(token, (str, AddedToken)):
                raise TypeError(f"Tokens to add must be str or AddedToken, got {type(token).__name__}: {token!r}.")
            if str(token) == "":
                continue
            if isinstance(token, str):
                if token in self._added_tokens_encoder:
                    continue
                is_special = token in self.all_special_tokens or special_tokens
                token = AddedToken(token, rstrip=False, lstrip=False, normalized=not is_special, special=is_special)
            elif special_tokens:
                token.special = True
            if token.content in self._added_tokens_encoder and self._added_tokens_decoder.get(
                self._added_tokens_encoder[token.content]
            ) == token:
                continue
            if not token.special and token.normalized and getattr(self, "do_lower_case", False):
                # The text is lowercased before added tokens are looked for; match that.
                token.content = token.content.lower()
            if token.content in vocab:
                index = vocab[token.content]
            else:
                index = next_index + added
                vocab[token.content] = index
                added += 1
            if token.special and token.content not in self.all_special_tokens:
                self._special_tokens_map["additional_special_tokens"].append(token)
            self._added_tokens_decoder[index] = token
            self._added_tokens_encoder[token.content] = index
            logger.info("Adding %s to the vocabulary", token)
        self._update_trie()
        return added

    def _update_trie(self, unique_no_split_tokens: Sequence[str] = ()) -> None:
        self.tokens_trie = Trie(*self._added_tokens_encoder, *unique_no_split_tokens)

    # --- tokenization --------------------------------------------------------------------------

    def prepare_for_tokenization(self, text: str, is_split_into_words: bool = False, **kwargs: Any) -> tuple[str, dict[str, Any]]:
        """A hook to transform the text before tokenization; returns ``(text, unused_kwargs)``."""
        return text, kwargs

    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False, **kwargs: Any) -> list[str]:
        """Split ``text`` into tokens, keeping added tokens whole.

        With ``pair``/``add_special_tokens`` the result is laid out like the model inputs.
        """
        if not isinstance(text, str):
            raise TypeError(f"tokenize() takes a str, got {type(text).__name__}: {text!r}.")
        if pair is not None or add_special_tokens:
            ids = self.encode(text, pair, add_special_tokens=add_special_tokens, **kwargs)
            return self.convert_ids_to_tokens(ids)

        split_special_tokens = kwargs.pop("split_special_tokens", self.split_special_tokens)
        text, kwargs = self.prepare_for_tokenization(text, **kwargs)
        if kwargs:
            logger.warning("Keyword arguments %s not recognized.", kwargs)

        if getattr(self, "do_lower_case", False):
            # Lowercase everything except the special tokens and added tokens that must match as is.
            keep = [re.escape(t) for t in self.all_special_tokens]
            keep += [re.escape(t.content) for t in self._added_tokens_decoder.values() if not t.special and t.normalized]
            # re.split with a capturing group puts the kept tokens at odd indices.
            pieces = re.split("(" + "|".join(keep) + ")", text) if keep else [text]
            text = "".join(piece if i % 2 else piece.lower() for i, piece in enumerate(pieces))

        if split_special_tokens:
            no_split: set[str] | dict[str, int] = set()
            pieces = [text]
        else:
            no_split = self._added_tokens_encoder
            pieces = self.tokens_trie.split(text)

        # Apply the added tokens' lstrip / rstrip / single_word flags to their neighbours.
        for i, piece in enumerate(pieces):
            if piece not in no_split:
                continue
            token = self._added_tokens_decoder[self._added_tokens_encoder[piece]]
            left = pieces[i - 1] if i > 0 else None
            right = pieces[i + 1] if i < len(pieces) - 1 else None
            if token.rstrip and right:
                pieces[i + 1] = right.lstrip()
            if token.lstrip and left:
                pieces[i - 1] = left.rstrip()
            if token.single_word and left and left[-1] != " ":
                pieces[i - 1] += piece
                pieces[i] = ""
            elif token.single_word and right and right[0] != " ":
                pieces[i] += right
                pieces[i + 1] = ""

        # Only asked for when set, so that subclasses whose _tokenize takes no options still work.
        options = {"split_special_tokens": True} if split_special_tokens else {}
        tokens: list[str] = []
        for piece in pieces:
            if not piece:
                continue
            if piece in no_split:
                tokens.append(piece)
            else:
                tokens.extend(self._tokenize(piece, **options))
        return tokens

    def _tokenize(self, text: str, **kwargs: Any) -> list[str]:
        """Split a piece of text that holds no added token into tokens (the model's algorithm)."""
        raise NotImplementedError

    def convert_tokens_to_ids(self, tokens: str | Sequence[str] | None) -> int | list[int] | None:
        if tokens is None:
            return None
        if isinstance(tokens, str):
            return self._convert_token_to_id_with_added_voc(tokens)
        return [self._convert_token_to_id_with_added_voc(token) for token in tokens]

    def _convert_token_to_id_with_added_voc(self, token: str) -> int | None:
        if token is None:
            return None
        if token in self._added_tokens_encoder:
            return self._added_tokens_encoder[token]
        return self._convert_token_to_id(token)

    def _convert_token_to_id(self, token: str) -> int:
        raise NotImplementedError

    def convert_ids_to_tokens(self, ids: int | Sequence[int], skip_special_tokens: bool = False) -> str | list[str]:
        if isinstance(ids, int):
            if ids in self._added_tokens_decoder:
                return self._added_tokens_decoder[ids].content
            return self._convert_id_to_token(ids)
        special_ids = set(self.all_special_ids) if skip_special_tokens else set()
        tokens = []
        for index in ids:
            index = int(index)
            if index in special_ids:
                continue
            if index in self._added_tokens_decoder:
                tokens.append(self._added_tokens_decoder[index].content)
            else:
                tokens.append(self._convert_id_to_token(index))
        return tokens

    def _convert_id_to_token(self, index: int) -> str:
        raise NotImplementedError

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    # --- encoding ------------------------------------------------------------------------------

    def _get_input_ids(self, text: Any, argument: str, is_split_into_words: bool, **kwargs: Any) -> list[int]:
        if isinstance(text, str):
            return self.convert_tokens_to_ids(self.tokenize(text, **kwargs))
        if isinstance(text, (list, tuple)) and all(isinstance(t, str) for t in text):
            if is_split_into_words:
                words = (self.tokenize(word, is_split_into_words=True, **kwargs) for word in text)
                return self.convert_tokens_to_ids(list(itertools.chain.from_iterable(words)))
            return self.convert_tokens_to_ids(list(text))  # already tokens
        if isinstance(text, (list, tuple)) and all(isinstance(t, int) and not isinstance(t, bool) for t in text):
            return list(text)  # already ids
        raise TypeError(
            f"{argument} must be a str, a list of str (tokens, or words with "
            f"is_split_into_words=True) or a list of int (ids); got {type(text).__name__}: {text!r:.80}."
        )

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
        self._refuse_offsets(return_offsets_mapping)
        first_ids = self._get_input_ids(text, "text", is_split_into_words, **kwargs)
        second_ids = self._get_input_ids(text_pair, "text_pair", is_split_into_words, **kwargs) if text_pair is not None else None
        return self.prepare_for_model(
            first_ids,
            pair_ids=second_ids,
            add_special_tokens=add_special_tokens,
            padding=padding_strategy.value,
            truncation=truncation_strategy.value,
            max_length=max_length,
            stride=stride,
            pad_to_multiple_of=pad_to_multiple_of,
            padding_side=padding_side,
            return_tensors=return_tensors,
            prepend_batch_axis=return_tensors is not None,
            return_attention_mask=return_attention_mask,
            return_token_type_ids=return_token_type_ids,
            return_overflowing_tokens=return_overflowing_tokens,
            return_special_tokens_mask=return_special_tokens_mask,
            return_length=return_length,
            verbose=verbose,
        )

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
        **kwargs: Any,
    ) -> BatchEncoding:
        self._refuse_offsets(return_offsets_mapping)
        batch: dict[str, list[Any]] = {}
        for i, item in enumerate(batch_text_or_text_pairs):
            is_pair = isinstance(item, (list, tuple)) and not (
                is_split_into_words and not isinstance(item[0], (list, tuple))
            )
            if is_pair and len(item) != 2:
                raise ValueError(
                    f"batch_text_or_text_pairs[{i}] must be a text or a (text, text_pair) tuple, "
                    f"got a sequence of {len(item)} items. For pre-tokenized words pass "
                    f"is_split_into_words=True."
                )
            first, second = item if is_pair else (item, None)
            first_ids = self._get_input_ids(first, f"text[{i}]", is_split_into_words, **kwargs)
            second_ids = (
                self._get_input_ids(second, f"text_pair[{i}]", is_split_into_words, **kwargs) if second is not None else None
            )
            # Pad later, all together; lengths are measured after padding (as fast tokenizers do).
            encoded = self.prepare_for_model(
                first_ids,
                second_ids,
                add_special_tokens=add_special_tokens,
                padding=PaddingStrategy.DO_NOT_PAD.value,
                truncation=truncation_strategy.value,
                max_length=max_length,
                stride=stride,
                return_attention_mask=False,
                return_token_type_ids=return_token_type_ids,
                return_overflowing_tokens=return_overflowing_tokens,
                return_special_tokens_mask=return_special_tokens_mask,
                verbose=verbose,
            )
            for key, value in encoded.items():
                batch.setdefault(key, []).append(value)

        if not batch:
            batch = {name: [] for name in self.model_input_names}
        batch = self.pad(
            batch,
            padding=padding_strategy.value,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            padding_side=padding_side,
            return_attention_mask=return_attention_mask,
        )
        if return_length:
            batch["length"] = [len(ids) for ids in batch["input_ids"]]
        return BatchEncoding(batch, tensor_type=return_tensors)

    @staticmethod
    def _refuse_offsets(return_offsets_mapping: bool) -> None:
        if return_offsets_mapping:
            raise NotImplementedError(
                "return_offset_mapping is not available when using Python tokenizers. To use this "
                "feature, change your tokenizer to one deriving from PreTrainedTokenizerFast (e.g. "
                "BertTokenizerFast instead of BertTokenizer)."
            )

    # --- decoding ------------------------------------------------------------------------------

    def _decode(
        self,
        token_ids: list[int],
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
        spaces_between_special_tokens: bool = True,
        **kwargs: Any,
    ) -> str:
        tokens = self.convert_ids_to_tokens(token_ids, skip_special_tokens=skip_special_tokens)
        # Added (non-special) tokens are kept verbatim, not passed through convert_tokens_to_string.
        verbatim = set(self._added_tokens_encoder) - set(self.all_special_tokens)
        verbatim |= {t for t in self.additional_special_tokens if self.convert_tokens_to_ids(t) >= self.vocab_size}
        pieces: list[str] = []
        run: list[str] = []
        for token in tokens:
            if token in verbatim:
                if run:
                    text = self.convert_tokens_to_string(run)
                    if text:
                        pieces.append(text)
                    run = []
                pieces.append(token)
            else:
                run.append(token)
        if run:
            pieces.append(self.convert_tokens_to_string(run))
        text = (" " if spaces_between_special_tokens else "").join(pieces)
        return self._clean_up_if_asked(text, clean_up_tokenization_spaces)

    # --- saving --------------------------------------------------------------------------------

    def _save_pretrained(
        self, save_directory: str, filename_prefix: str | None, legacy_format: bool | None
    ) -> tuple[str, ...]:
        written = tuple(self.save_vocabulary(save_directory, filename_prefix=filename_prefix))
        beyond_vocab = {token: index for token, index in self.added_tokens_encoder.items() if index >= self.vocab_size}
        if beyond_vocab:
            prefix = f"{filename_prefix}-" if filename_prefix else ""
            path = os.path.join(save_directory, prefix + ADDED_TOKENS_FILE)
            atomic_write_text(path, json.dumps(beyond_vocab, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
            written += (path,)
        return written
