"""BERT's WordPiece tokenizer in pure Python.

Two stages, as in the original BERT code: :class:`BasicTokenizer` cleans the text and splits it
into words and punctuation (lowercasing and stripping accents for uncased models), then
:class:`WordpieceTokenizer` splits each word into the longest pieces found in ``vocab.txt``
(``unaffable`` -> ``un ##aff ##able``).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import unicodedata
from collections.abc import Iterable
from typing import Any

from polyformers.tokenization_utils import PreTrainedTokenizer
from polyformers.io_utils import atomic_write_text
from polyformers.tokenization_utils_base import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

__all__ = ["BasicTokenizer", "BertTokenizer", "WordpieceTokenizer", "load_vocab"]

VOCAB_FILES_NAMES = {"vocab_file": "vocab.txt", "tokenizer_file": "tokenizer.json"}


def load_vocab(vocab_file: str) -> collections.OrderedDict[str, int]:
    """``vocab.txt`` (one token per line, the line number is the id) as ``{token: id}``."""
    vocab: collections.OrderedDict[str, int] = collections.OrderedDict()
    with open(vocab_file, encoding="utf-8") as reader:
        for index, token in enumerate(reader):
            vocab[token.rstrip("\n")] = index
    return vocab


def _vocab_from_tokenizer_json(tokenizer_file: str) -> collections.OrderedDict[str, int]:
    """The WordPiece vocabulary stored in a ``tokenizer.json`` (for directories without vocab.txt)."""
    with open(tokenizer_file, encoding="utf-8") as f:
        model = json.load(f).get("model", {})
    if model.get("type") != "WordPiece" or not isinstance(model.get("vocab"), dict):
        raise ValueError(
            f"{tokenizer_file} does not hold a WordPiece model (its model type is "
            f"{model.get('type')!r}), so BertTokenizer cannot read a vocabulary from it; pass vocab_file=."
        )
    return collections.OrderedDict(sorted(model["vocab"].items(), key=lambda kv: kv[1]))


def whitespace_tokenize(text: str) -> list[str]:
    """Split on whitespace, dropping empty pieces."""
    return text.split()


# Character classes, defined as BERT defines them (not exactly as Python's str methods do).


def _is_whitespace(char: str) -> bool:
    if char in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(char) == "Zs"


def _is_control(char: str) -> bool:
    if char in ("\t", "\n", "\r"):  # whitespace for BERT, though Unicode calls them control
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def _is_punctuation(char: str) -> bool:
    cp = ord(char)
    # ASCII symbols such as $ ^ ` are not Unicode punctuation but BERT splits them off too.
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_chinese_char(cp: int) -> bool:
    """CJK Unified Ideographs (and extensions): Chinese characters and Japanese Kanji, not
    Hiragana, Katakana or Hangul."""
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


class BasicTokenizer:
    """Text cleanup and splitting into words and punctuation.

    Args:
        do_lower_case: lowercase the text.
        never_split: tokens kept whole (neither lowercased nor split).
        tokenize_chinese_chars: put spaces around CJK ideographs, making each one a word.
        strip_accents: remove accents; None means "do it when lowercasing" (original BERT).
        do_split_on_punc: split punctuation off words.
    """

    def __init__(
        self,
        do_lower_case: bool = True,
        never_split: Iterable[str] | None = None,
        tokenize_chinese_chars: bool = True,
        strip_accents: bool | None = None,
        do_split_on_punc: bool = True,
    ) -> None:
        self.do_lower_case = do_lower_case
        self.never_split = set(never_split or ())
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.strip_accents = strip_accents
        self.do_split_on_punc = do_split_on_punc

    def tokenize(self, text: str, never_split: Iterable[str] | None = None) -> list[str]:
        never_split = self.never_split.union(never_split) if never_split else self.never_split
        text = self._clean_text(text)
        if self.tokenize_chinese_chars:
            text = self._tokenize_chinese_chars(text)
        # NFC first, so that a character and its decomposed spelling tokenize alike.
        text = unicodedata.normalize("NFC", text)
        strip_accents = self.do_lower_case if self.strip_accents is None else self.strip_accents
        split_tokens: list[str] = []
        for token in whitespace_tokenize(text):
            if token not in never_split:
                if self.do_lower_case:
                    token = token.lower()
                if strip_accents:
                    token = self._run_strip_accents(token)
            split_tokens.extend(self._run_split_on_punc(token, never_split))
        return whitespace_tokenize(" ".join(split_tokens))

    @staticmethod
    def _run_strip_accents(text: str) -> str:
        decomposed = unicodedata.normalize("NFD", text)
        return "".join(char for char in decomposed if unicodedata.category(char) != "Mn")

    def _run_split_on_punc(self, text: str, never_split: set[str]) -> list[str]:
        if not self.do_split_on_punc or text in never_split:
            return [text]
        words: list[list[str]] = []
        start_new_word = True
        for char in text:
            if _is_punctuation(char):
                words.append([char])
                start_new_word = True
            else:
                if start_new_word:
                    words.append([])
                start_new_word = False
                words[-1].append(char)
        return ["".join(word) for word in words]

    @staticmethod
    def _tokenize_chinese_chars(text: str) -> str:
        return "".join(f" {char} " if _is_chinese_char(ord(char)) else char for char in text)

    @staticmethod
    def _clean_text(text: str) -> str:
        """Drop NUL, U+FFFD and control characters; turn every whitespace into a plain space."""
        output = []
        for char in text:
            cp = ord(char)
            if cp == 0 or cp == 0xFFFD or _is_control(char):
                continue
            output.append(" " if _is_whitespace(char) else char)
        return "".join(output)


class WordpieceTokenizer:
    """Greedy longest-match-first split of a word into vocabulary pieces.

    A word longer than ``max_input_chars_per_word`` characters, or one that cannot be covered by
    pieces, becomes ``unk_token``.
    """

    def __init__(self, vocab: dict[str, int], unk_token: str, max_input_chars_per_word: int = 100) -> None:
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word

    def tokenize(self, text: str) -> list[str]:
        output_tokens: list[str] = []
        for token in whitespace_tokenize(text):
            if len(token) > self.max_input_chars_per_word:
                output_tokens.append(self.unk_token)
                continue
            pieces: list[str] = []
            start = 0
            while start < len(token):
                end = len(token)
                piece = None
                while start < end:
                    candidate = token[start:end] if start == 0 else "##" + token[start:end]
                    if candidate in self.vocab:
                        piece = candidate
                        break
                    end -= 1
                if piece is None:
                    pieces = [self.unk_token]
                    break
                pieces.append(piece)
                start = end
            output_tokens.extend(pieces)
        return output_tokens


class BertTokenizer(PreTrainedTokenizer):
    """BERT's tokenizer (WordPiece), in pure Python.

    Args:
        vocab_file: ``vocab.txt``. Without it, the vocabulary is read from ``tokenizer_file``.
        do_lower_case: lowercase the text (uncased models).
        do_basic_tokenize: run :class:`BasicTokenizer` before WordPiece.
        never_split: tokens the basic tokenizer keeps whole.
        unk_token, sep_token, pad_token, cls_token, mask_token: the special tokens.
        tokenize_chinese_chars: split CJK ideographs into single characters.
        strip_accents: remove accents; None follows ``do_lower_case``.
        clean_up_tokenization_spaces: default of ``decode``'s argument of that name.
        tokenizer_file: a ``tokenizer.json`` holding a WordPiece model (used only without vocab_file).
    """

    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file: str | None = None,
        do_lower_case: bool = True,
        do_basic_tokenize: bool = True,
        never_split: Iterable[str] | None = None,
        unk_token: str = "[UNK]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        mask_token: str = "[MASK]",
        tokenize_chinese_chars: bool = True,
        strip_accents: bool | None = None,
        clean_up_tokenization_spaces: bool = True,
        tokenizer_file: str | None = None,
        **kwargs: Any,
    ) -> None:
        if vocab_file is not None and os.path.isfile(vocab_file):
            self.vocab = load_vocab(vocab_file)
        elif vocab_file is None and tokenizer_file is not None and os.path.isfile(tokenizer_file):
            self.vocab = _vocab_from_tokenizer_json(tokenizer_file)
        else:
            raise ValueError(
                f"Can't find a vocabulary file at path {vocab_file!r}. Pass the path of a BERT "
                f"vocab.txt as vocab_file=, or load a saved tokenizer with "
                f"BertTokenizer.from_pretrained(directory)."
            )
        self.ids_to_tokens = collections.OrderedDict((index, token) for token, index in self.vocab.items())
        self.do_basic_tokenize = do_basic_tokenize
        if do_basic_tokenize:
            self.basic_tokenizer = BasicTokenizer(
                do_lower_case=do_lower_case,
                never_split=never_split,
                tokenize_chinese_chars=tokenize_chinese_chars,
                strip_accents=strip_accents,
            )
        self.wordpiece_tokenizer = WordpieceTokenizer(vocab=self.vocab, unk_token=str(unk_token))
        super().__init__(
            do_lower_case=do_lower_case,
            do_basic_tokenize=do_basic_tokenize,
            never_split=list(never_split) if never_split is not None else None,
            unk_token=unk_token,
            sep_token=sep_token,
            pad_token=pad_token,
            cls_token=cls_token,
            mask_token=mask_token,
            tokenize_chinese_chars=tokenize_chinese_chars,
            strip_accents=strip_accents,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            **kwargs,
        )

    @property
    def do_lower_case(self) -> bool:
        return self.basic_tokenizer.do_lower_case if self.do_basic_tokenize else False

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def get_vocab(self) -> dict[str, int]:
        return dict(self.vocab, **self._added_tokens_encoder)

    def _tokenize(self, text: str, split_special_tokens: bool = False, **kwargs: Any) -> list[str]:
        if not self.do_basic_tokenize:
            return self.wordpiece_tokenizer.tokenize(text)
        never_split = None if split_special_tokens else self.all_special_tokens
        tokens: list[str] = []
        for token in self.basic_tokenizer.tokenize(text, never_split=never_split):
            if token in self.basic_tokenizer.never_split:
                tokens.append(token)
            else:
                tokens.extend(self.wordpiece_tokenizer.tokenize(token))
        return tokens

    def _convert_token_to_id(self, token: str) -> int:
        return self.vocab.get(token, self.vocab.get(self.unk_token))

    def _convert_id_to_token(self, index: int) -> str:
        return self.ids_to_tokens.get(index, self.unk_token)

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return " ".join(tokens).replace(" ##", "").strip()

    # [CLS] A [SEP] and [CLS] A [SEP] B [SEP]; segment 0 up to the first [SEP], then 1.

    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None) -> list[int]:
        cls, sep = [self.cls_token_id], [self.sep_token_id]
        if token_ids_1 is None:
            return cls + token_ids_0 + sep
        return cls + token_ids_0 + sep + token_ids_1 + sep

    def create_token_type_ids_from_sequences(self, token_ids_0: list[int], token_ids_1: list[int] | None = None) -> list[int]:
        first = [0] * (len(token_ids_0) + 2)
        if token_ids_1 is None:
            return first
        return first + [1] * (len(token_ids_1) + 1)

    def get_special_tokens_mask(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None, already_has_special_tokens: bool = False
    ) -> list[int]:
        if already_has_special_tokens:
            # Named explicitly (not super()) because BertTokenizerFast shares this method.
            return PreTrainedTokenizerBase.get_special_tokens_mask(self, token_ids_0, token_ids_1, True)
        mask = [1] + [0] * len(token_ids_0) + [1]
        if token_ids_1 is not None:
            mask += [0] * len(token_ids_1) + [1]
        return mask

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        """Write ``vocab.txt`` (one token per line, in id order)."""
        return (write_vocab_file(self.vocab, save_directory, filename_prefix),)


def write_vocab_file(vocab: dict[str, int], save_directory: str, filename_prefix: str | None = None) -> str:
    """Write ``vocab`` as a BERT ``vocab.txt`` in ``save_directory``; returns its path."""
    prefix = f"{filename_prefix}-" if filename_prefix else ""
    path = os.path.join(save_directory, prefix + VOCAB_FILES_NAMES["vocab_file"])
    tokens = sorted(vocab.items(), key=lambda kv: kv[1])
    if [index for _, index in tokens] != list(range(len(tokens))):
        logger.warning(
            "Saving vocabulary to %s: its indices are not consecutive, so the ids read back from "
            "the file (line numbers) will differ. Please check that the vocabulary is not corrupted!",
            path,
        )
    atomic_write_text(path, "".join(token + "\n" for token, _ in tokens))
    return path
