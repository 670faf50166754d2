"""Wav2Vec2's CTC tokenizer: characters in ``vocab.json``, words split by a delimiter token."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from polyformers.io_utils import atomic_write_text
from polyformers.tokenization_utils import PreTrainedTokenizer
from polyformers.tokenization_utils_base import AddedToken, to_py_obj

logger = logging.getLogger(__name__)

VOCAB_FILES_NAMES = {"vocab_file": "vocab.json"}

Offsets = list[dict[str, Any]]


@dataclass
class Wav2Vec2CTCTokenizerOutput:
    """What ``decode``/``batch_decode`` return when offsets are asked for (lists for a batch)."""

    text: list[str] | str
    char_offsets: list[Offsets] | Offsets | None = None
    word_offsets: list[Offsets] | Offsets | None = None

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


class Wav2Vec2CTCTokenizer(PreTrainedTokenizer):
    """Character tokenizer for CTC models; ``decode`` collapses repeated ids and drops the blank (pad).

    Args:
        vocab_file: ``vocab.json``, ``{token: id}`` (or ``{lang: {token: id}}`` with ``target_lang``).
        word_delimiter_token: the token that stands for a space between words.
        replace_word_delimiter_char: what the delimiter becomes when decoding.
        do_lower_case: upper-case text before tokenizing and lower-case decoded text.
    """

    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file: str,
        bos_token: str = "<s>",
        eos_token: str = "</s>",
        unk_token: str = "<unk>",
        pad_token: str = "<pad>",
        word_delimiter_token: str = "|",
        replace_word_delimiter_char: str = " ",
        do_lower_case: bool = False,
        target_lang: str | None = None,
        **kwargs: Any,
    ) -> None:
        self._word_delimiter_token = word_delimiter_token
        self.do_lower_case = do_lower_case
        self.replace_word_delimiter_char = replace_word_delimiter_char
        self.target_lang = target_lang
        with open(vocab_file, encoding="utf-8") as f:
            self.vocab: dict[str, Any] = json.load(f)
        if target_lang is not None:
            if target_lang not in self.vocab:
                raise ValueError(
                    f"target_lang={target_lang!r} is not in {vocab_file!r}; it has {sorted(self.vocab)}."
                )
            self.encoder: dict[str, int] = self.vocab[target_lang]
        else:
            self.encoder = self.vocab
        self.decoder = {index: token for token, index in self.encoder.items()}
        super().__init__(
            unk_token=unk_token,
            bos_token=bos_token,
            eos_token=eos_token,
            pad_token=pad_token,
            do_lower_case=do_lower_case,
            word_delimiter_token=word_delimiter_token,
            replace_word_delimiter_char=replace_word_delimiter_char,
            target_lang=target_lang,
            **kwargs,
        )
        # Multi-character vocabulary entries (<pad>, <s>, ...) must never be split into characters.
        multi_char = [t for t in self.encoder if len(t) > 1 and t not in self._added_tokens_encoder]
        if multi_char:
            self.add_tokens([AddedToken(t, rstrip=True, lstrip=True, normalized=False) for t in multi_char])

    @property
    def word_delimiter_token(self) -> str | None:
        return None if self._word_delimiter_token is None else str(self._word_delimiter_token)

    @word_delimiter_token.setter
    def word_delimiter_token(self, value: str | None) -> None:
        self._word_delimiter_token = value

    @property
    def word_delimiter_token_id(self) -> int | None:
        if self._word_delimiter_token is None:
            return None
        return self.convert_tokens_to_ids(self.word_delimiter_token)

    @property
    def vocab_size(self) -> int:
        return len(self.decoder)

    def get_vocab(self) -> dict[str, int]:
        vocab = dict(self.encoder)
        vocab.update(self.added_tokens_encoder)
        return vocab

    def _add_tokens(self, new_tokens: list[str | AddedToken], special_tokens: bool = False) -> int:
        tokens = [AddedToken(t, rstrip=False, lstrip=False, normalized=False) if isinstance(t, str) else t for t in new_tokens]
        return super()._add_tokens(tokens, special_tokens)

    def _tokenize(self, text: str, **kwargs: Any) -> list[str]:
        if self.do_lower_case:
            text = text.upper()
        return list(text.replace(" ", self.word_delimiter_token))

    def _convert_token_to_id(self, token: str) -> int:
        return self.encoder.get(token, self.encoder.get(self.unk_token))

    def _convert_id_to_token(self, index: int) -> str:
        return self.decoder.get(index, self.unk_token)

    def convert_ids_to_tokens(self, ids: int | list[int], skip_special_tokens: bool = False) -> str | list[str]:
        # The vocabulary wins over added tokens (they share ids for <pad>, <s>, ...).
        def lookup(index: int) -> str:
            if index in self.decoder:
                return self.decoder[index]
            if index in self._added_tokens_decoder:
                return self._added_tokens_decoder[index].content
            return self.unk_token

        if isinstance(ids, int):
            return lookup(ids)
        special_ids = set(self.all_special_ids) if skip_special_tokens else set()
        return [lookup(int(index)) for index in ids if int(index) not in special_ids]

    def prepare_for_tokenization(self, text: str, is_split_into_words: bool = False, **kwargs: Any) -> tuple[str, dict[str, Any]]:
        if is_split_into_words:
            text = " " + text
        return text, kwargs

    # --- decoding ------------------------------------------------------------------------------

    def convert_tokens_to_string(
        self,
        tokens: list[str],
        group_tokens: bool = True,
        spaces_between_special_tokens: bool = False,
        output_char_offsets: bool = False,
        output_word_offsets: bool = False,
    ) -> dict[str, Any]:
        """CTC-collapse ``tokens``: merge repeats, drop the blank (pad), turn delimiters into spaces."""
        if not tokens:
            return {"text": "", "char_offsets": [], "word_offsets": []}
        if group_tokens:
            chars, repetitions = zip(*((token, len(list(run))) for token, run in groupby(tokens)))
        else:
            chars, repetitions = tuple(tokens), (1,) * len(tokens)
        kept = [
            self.replace_word_delimiter_char if c == self.word_delimiter_token else c
            for c in chars
            if c != self.pad_token
        ]
        char_offsets = word_offsets = None
        if output_char_offsets or output_word_offsets:
            char_offsets = self._compute_offsets(list(repetitions), list(chars), self.pad_token)
            for offset, char in zip(char_offsets, kept):
                offset["char"] = char
            if output_word_offsets:
                word_offsets = self._get_word_offsets(char_offsets, self.replace_word_delimiter_char)
            if not output_char_offsets:
                char_offsets = None
        text = (" " if spaces_between_special_tokens else "").join(kept).strip()
        if self.do_lower_case:
            text = text.lower()
        return {"text": text, "char_offsets": char_offsets, "word_offsets": word_offsets}

    @staticmethod
    def _compute_offsets(repetitions: list[int], chars: list[str], blank_token: str) -> Offsets:
        """``{"char", "start_offset", "end_offset"}`` of each run of ``chars``, blanks left out."""
        offsets = []
        start = 0
        for char, count in zip(chars, repetitions):
            if char != blank_token:
                offsets.append({"char": char, "start_offset": start, "end_offset": start + count})
            start += count
        return offsets

    @staticmethod
    def _get_word_offsets(char_offsets: Offsets, word_delimiter_char: str = " ") -> Offsets:
        """Merge character offsets into ``{"word", "start_offset", "end_offset"}`` between delimiters."""
        words: Offsets = []
        current: dict[str, Any] | None = None
        for offset in char_offsets:
            if offset["char"] == word_delimiter_char:
                if current is not None:
                    words.append(current)
                current = None
            elif current is None:
                current = {"word": offset["char"], "start_offset": offset["start_offset"], "end_offset": offset["end_offset"]}
            else:
                current["word"] += offset["char"]
                current["end_offset"] = offset["end_offset"]
        if current is not None:
            words.append(current)
        return words

    def _decode(
        self,
        token_ids: list[int],
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
        group_tokens: bool = True,
        spaces_between_special_tokens: bool = False,
        output_word_offsets: bool = False,
        output_char_offsets: bool = False,
        **kwargs: Any,
    ) -> str | Wav2Vec2CTCTokenizerOutput:
        tokens = self.convert_ids_to_tokens(token_ids, skip_special_tokens=False)
        if skip_special_tokens:
            special = set(self.all_special_tokens) - {self.word_delimiter_token}
            tokens = [t for t in tokens if t not in special]
        result = self.convert_tokens_to_string(
            tokens,
            group_tokens=group_tokens,
            spaces_between_special_tokens=spaces_between_special_tokens,
            output_word_offsets=output_word_offsets,
            output_char_offsets=output_char_offsets,
        )
        text = self._clean_up_if_asked(result["text"], clean_up_tokenization_spaces)
        if output_char_offsets or output_word_offsets:
            return Wav2Vec2CTCTokenizerOutput(text, result["char_offsets"], result["word_offsets"])
        return text

    def decode(
        self,
        token_ids: Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
        output_char_offsets: bool = False,
        output_word_offsets: bool = False,
        **kwargs: Any,
    ) -> str | Wav2Vec2CTCTokenizerOutput:
        """Decode one sequence of CTC ids (a list, or a 1-D array/tensor).

        With ``output_char_offsets``/``output_word_offsets`` returns a
        :class:`Wav2Vec2CTCTokenizerOutput` whose offsets count frames (logit positions).
        """
        token_ids = to_py_obj(token_ids)
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        return self._decode(
            token_ids,
            skip_special_tokens=skip_special_tokens,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            output_char_offsets=output_char_offsets,
            output_word_offsets=output_word_offsets,
            **kwargs,
        )

    def batch_decode(
        self,
        sequences: Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
        output_char_offsets: bool = False,
        output_word_offsets: bool = False,
        **kwargs: Any,
    ) -> list[str] | Wav2Vec2CTCTokenizerOutput:
        """:meth:`decode` for each sequence; with offsets, one output whose fields are lists."""
        outputs = [
            self.decode(
                seq,
                skip_special_tokens=skip_special_tokens,
                clean_up_tokenization_spaces=clean_up_tokenization_spaces,
                output_char_offsets=output_char_offsets,
                output_word_offsets=output_word_offsets,
                **kwargs,
            )
            for seq in to_py_obj(sequences)
        ]
        if output_char_offsets or output_word_offsets:
            return Wav2Vec2CTCTokenizerOutput(
                text=[o.text for o in outputs],
                char_offsets=[o.char_offsets for o in outputs] if output_char_offsets else None,
                word_offsets=[o.word_offsets for o in outputs] if output_word_offsets else None,
            )
        return outputs

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        """Write ``vocab.json`` (the whole file, every language of a nested vocabulary)."""
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        path = os.path.join(save_directory, prefix + VOCAB_FILES_NAMES["vocab_file"])
        atomic_write_text(path, json.dumps(self.vocab, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        return (path,)
