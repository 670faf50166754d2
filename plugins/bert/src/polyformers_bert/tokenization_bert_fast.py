"""BERT's WordPiece tokenizer on the ``tokenizers`` library.

The backend comes from ``tokenizer.json`` when there is one; otherwise it is assembled from
``vocab.txt`` out of the library's BERT pieces: ``BertNormalizer`` (cleanup, CJK spacing,
lowercasing, accent stripping), ``BertPreTokenizer`` (whitespace and punctuation), a ``WordPiece``
model, the ``[CLS] $A [SEP] $B:1 [SEP]:1`` template, and the ``WordPiece`` decoder.
"""

from __future__ import annotations

import json
from typing import Any

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from polyformers.tokenization_utils_fast import PreTrainedTokenizerFast
from polyformers_bert.tokenization_bert import VOCAB_FILES_NAMES, BertTokenizer, load_vocab, write_vocab_file

__all__ = ["BertTokenizerFast"]


class BertTokenizerFast(PreTrainedTokenizerFast):
    """BERT's tokenizer (WordPiece), backed by the ``tokenizers`` library.

    Args:
        vocab_file: ``vocab.txt``, used when there is no ``tokenizer_file``.
        tokenizer_file: ``tokenizer.json``.
        do_lower_case, tokenize_chinese_chars, strip_accents: the normalizer's options; they
            override those stored in ``tokenizer.json`` (as in Transformers).
        unk_token, sep_token, pad_token, cls_token, mask_token: the special tokens.
        clean_up_tokenization_spaces: default of ``decode``'s argument of that name.
    """

    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    slow_tokenizer_class = BertTokenizer

    def __init__(
        self,
        vocab_file: str | None = None,
        tokenizer_file: str | None = None,
        do_lower_case: bool = True,
        unk_token: str = "[UNK]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        mask_token: str = "[MASK]",
        tokenize_chinese_chars: bool = True,
        strip_accents: bool | None = None,
        clean_up_tokenization_spaces: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            vocab_file=vocab_file,
            tokenizer_file=tokenizer_file,
            do_lower_case=do_lower_case,
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
        # init_kwargs, not the arguments: built from a slow tokenizer, its options win.
        options = self.init_kwargs
        self.do_lower_case = options["do_lower_case"]
        self._sync_normalizer(self.do_lower_case, options["strip_accents"], options["tokenize_chinese_chars"])

    def _sync_normalizer(self, lowercase: bool, strip_accents: bool | None, handle_chinese_chars: bool) -> None:
        """Make a loaded ``BertNormalizer`` follow the init options (a saved config may differ)."""
        normalizer = self._tokenizer.normalizer
        if normalizer is None:
            return
        state = json.loads(normalizer.__getstate__())
        wanted = {"lowercase": lowercase, "strip_accents": strip_accents, "handle_chinese_chars": handle_chinese_chars}
        if state.get("type") != "BertNormalizer" or all(state.get(k, v) == v for k, v in wanted.items()):
            return
        state.pop("type")
        self._tokenizer.normalizer = normalizers.BertNormalizer(**{**state, **wanted})

    def _build_backend(
        self,
        slow_tokenizer: BertTokenizer | None = None,
        *,
        vocab_file: str | None = None,
        do_lower_case: bool = True,
        unk_token: Any = "[UNK]",
        sep_token: Any = "[SEP]",
        cls_token: Any = "[CLS]",
        tokenize_chinese_chars: bool = True,
        strip_accents: bool | None = None,
        **unused: Any,
    ) -> Tokenizer:
        if slow_tokenizer is not None:
            vocab = dict(slow_tokenizer.vocab)
        elif vocab_file is not None:
            vocab = dict(load_vocab(vocab_file))
        else:
            raise ValueError(
                "BertTokenizerFast needs a tokenizer.json (tokenizer_file=) or a vocab.txt "
                "(vocab_file=); got neither. Load a saved tokenizer with "
                "BertTokenizerFast.from_pretrained(directory)."
            )
        cls, sep = str(cls_token), str(sep_token)
        missing = [token for token in (cls, sep) if token not in vocab]
        if missing:
            raise ValueError(
                f"The vocabulary ({vocab_file or 'of the slow tokenizer'}) has no {missing}, which "
                f"BERT's template [CLS] A [SEP] B [SEP] needs; add them to vocab.txt or pass "
                f"cls_token=/sep_token= naming tokens it has."
            )
        backend = Tokenizer(WordPiece(vocab, unk_token=str(unk_token), max_input_chars_per_word=100))
        backend.normalizer = normalizers.BertNormalizer(
            clean_text=True,
            handle_chinese_chars=tokenize_chinese_chars,
            strip_accents=strip_accents,
            lowercase=do_lower_case,
        )
        backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        backend.post_processor = processors.TemplateProcessing(
            single=f"{cls}:0 $A:0 {sep}:0",
            pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
            special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])],
        )
        backend.decoder = decoders.WordPiece(prefix="##")
        return backend

    # The special-token layout is BERT's, shared with the slow tokenizer.
    build_inputs_with_special_tokens = BertTokenizer.build_inputs_with_special_tokens
    create_token_type_ids_from_sequences = BertTokenizer.create_token_type_ids_from_sequences
    get_special_tokens_mask = BertTokenizer.get_special_tokens_mask

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        """Write ``vocab.txt`` from the backend's WordPiece vocabulary (added tokens excluded)."""
        vocab = self._tokenizer.get_vocab(with_added_tokens=False)
        return (write_vocab_file(vocab, save_directory, filename_prefix),)
