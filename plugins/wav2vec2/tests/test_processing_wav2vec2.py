"""Wav2Vec2 feature extractor, CTC tokenizer and processor, checked against Transformers."""

from __future__ import annotations

import json

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")

from polyformers.auto import AutoFeatureExtractor, AutoProcessor  # noqa: E402
from polyformers_wav2vec2.feature_extraction_wav2vec2 import Wav2Vec2FeatureExtractor  # noqa: E402
from polyformers_wav2vec2.processing_wav2vec2 import Wav2Vec2Processor  # noqa: E402
from polyformers_wav2vec2.tokenization_wav2vec2 import Wav2Vec2CTCTokenizer  # noqa: E402

VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|"] + list("ABCDEHLORW")


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.json"
    path.write_text(json.dumps({token: index for index, token in enumerate(VOCAB)}))
    return str(path)


def _speech(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(0.3, 2.0, n).astype(np.float64) for n in (800, 1000, 1200)]


def _assert_batches_equal(ours, theirs):
    assert set(ours) == set(theirs)
    for key in theirs:
        a, b = ours[key], theirs[key]
        if isinstance(b, list) or (isinstance(b, np.ndarray) and b.dtype == object):
            assert len(a) == len(b)
            for x, y in zip(a, b):
                np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-6)
        else:
            assert type(a) is type(b), key
            assert a.dtype == b.dtype, key
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


CALLS = [
    dict(),
    dict(padding=True),
    dict(padding="longest", return_attention_mask=True),
    dict(padding="max_length", max_length=1100, truncation=True, return_attention_mask=True),
    dict(padding=True, pad_to_multiple_of=512, return_attention_mask=True, return_tensors="np"),
    dict(padding=True, return_attention_mask=True, return_tensors="pt"),
    dict(padding=True, return_tensors="pt"),
]


@pytest.mark.parametrize("init", [dict(), dict(do_normalize=False, padding_value=-1.0), dict(return_attention_mask=True)])
@pytest.mark.parametrize("call", CALLS)
def test_feature_extractor_matches_transformers(init, call):
    ours = Wav2Vec2FeatureExtractor(**init)(_speech(), sampling_rate=16000, **call)
    theirs = transformers.Wav2Vec2FeatureExtractor(**init)(_speech(), sampling_rate=16000, **call)
    _assert_batches_equal(ours, theirs)


def test_single_utterance_and_list_input():
    speech = _speech()[0]
    for raw in (speech, speech.tolist()):
        ours = Wav2Vec2FeatureExtractor()(raw, sampling_rate=16000, return_tensors="np")
        theirs = transformers.Wav2Vec2FeatureExtractor()(raw, sampling_rate=16000, return_tensors="np")
        _assert_batches_equal(ours, theirs)
    out = Wav2Vec2FeatureExtractor()(speech, sampling_rate=16000, return_tensors="np")
    assert out.input_values.shape == (1, 800)
    assert abs(out.input_values.mean()) < 1e-5 and abs(out.input_values.std() - 1) < 1e-3


def test_normalisation_uses_unpadded_part_only():
    out = Wav2Vec2FeatureExtractor(return_attention_mask=True)(_speech(), sampling_rate=16000, padding=True)
    first = out["input_values"][0]
    assert abs(first[:800].mean()) < 1e-5 and abs(first[:800].std() - 1) < 1e-3
    assert np.all(first[800:] == 0.0)


def test_preprocessor_config_round_trips_with_transformers(tmp_path):
    theirs = transformers.Wav2Vec2FeatureExtractor(padding_value=0.5, return_attention_mask=True, do_normalize=False)
    theirs.save_pretrained(tmp_path / "t")
    ours = Wav2Vec2FeatureExtractor.from_pretrained(tmp_path / "t")
    assert (ours.padding_value, ours.return_attention_mask, ours.do_normalize, ours.sampling_rate) == (0.5, True, False, 16000)
    ours.save_pretrained(tmp_path / "o")
    back = transformers.Wav2Vec2FeatureExtractor.from_pretrained(tmp_path / "o")
    assert back.to_dict() == theirs.to_dict()
    assert isinstance(AutoFeatureExtractor.from_pretrained(tmp_path / "t"), Wav2Vec2FeatureExtractor)


def test_errors_name_the_input():
    fe = Wav2Vec2FeatureExtractor()
    with pytest.raises(ValueError, match=r"raw_speech.*8000 Hz.*16000"):
        fe(np.zeros(100), sampling_rate=8000)
    with pytest.raises(ValueError, match=r"raw_speech.*mono.*\(2, 10, 2\)"):
        fe(np.zeros((2, 10, 2)), sampling_rate=16000)
    with pytest.raises(ValueError, match=r"raw_speech\[0\].*mono"):
        fe([np.zeros((10, 2))], sampling_rate=16000)
    with pytest.raises(ValueError, match=r"raw_speech.*empty"):
        fe(np.zeros(0), sampling_rate=16000)
    with pytest.raises(ValueError, match=r"raw_speech.*empty"):
        fe([], sampling_rate=16000)
    with pytest.raises(ValueError, match="max_length"):
        fe(_speech(), sampling_rate=16000, padding="max_length")


def _tokenizers(vocab_file, **kwargs):
    return Wav2Vec2CTCTokenizer(vocab_file, **kwargs), transformers.Wav2Vec2CTCTokenizer(vocab_file, **kwargs)


@pytest.mark.parametrize("kwargs", [dict(), dict(do_lower_case=True)])
def test_tokenizer_ids_match(vocab_file, kwargs):
    ours, theirs = _tokenizers(vocab_file, **kwargs)
    for text in ["HELLO WORLD", "hello world", "A  B", "XYZ", "HE<unk>LLO</s>"]:
        assert ours(text).input_ids == theirs(text).input_ids, text
    batch = ["HELLO", "WORLD HELLO"]
    assert ours(batch, padding=True).input_ids == theirs(batch, padding=True).input_ids


SEQUENCES = [
    [0, 8, 8, 0, 9, 0, 14, 14, 0, 14, 17, 4, 4, 0, 18, 17, 0, 16, 14, 7, 0],
    [4, 5, 5, 5, 0, 0, 6, 1, 2, 3, 4, 7],
    [0, 0, 0],
    [],
]


@pytest.mark.parametrize("kwargs", [dict(), dict(do_lower_case=True)])
@pytest.mark.parametrize("skip", [False, True])
def test_decode_matches(vocab_file, kwargs, skip):
    ours, theirs = _tokenizers(vocab_file, **kwargs)
    for ids in SEQUENCES:
        assert ours.decode(ids, skip_special_tokens=skip) == theirs.decode(ids, skip_special_tokens=skip), ids
        assert ours.decode(ids, group_tokens=False) == theirs.decode(ids, group_tokens=False), ids
    assert ours.batch_decode(SEQUENCES[:3], skip_special_tokens=skip) == theirs.batch_decode(SEQUENCES[:3], skip_special_tokens=skip)
    assert ours.batch_decode(np.array(SEQUENCES[2:3])) == theirs.batch_decode(np.array(SEQUENCES[2:3]))


def _plain(offsets):
    if offsets is None:
        return None
    return json.loads(json.dumps(offsets, default=int))


@pytest.mark.parametrize("chars,words", [(True, False), (False, True), (True, True)])
def test_offsets_match(vocab_file, chars, words):
    ours, theirs = _tokenizers(vocab_file)
    for ids in SEQUENCES[:3]:
        a = ours.decode(ids, output_char_offsets=chars, output_word_offsets=words)
        b = theirs.decode(ids, output_char_offsets=chars, output_word_offsets=words)
        assert a.text == b.text
        assert _plain(a.char_offsets) == _plain(b.char_offsets)
        assert _plain(a.word_offsets) == _plain(b.word_offsets)
    a = ours.batch_decode(SEQUENCES[:2], output_char_offsets=chars, output_word_offsets=words)
    b = theirs.batch_decode(SEQUENCES[:2], output_char_offsets=chars, output_word_offsets=words)
    assert a.text == b.text
    assert _plain(a.char_offsets) == _plain(b.char_offsets)
    assert _plain(a.word_offsets) == _plain(b.word_offsets)


def test_tokenizer_round_trips_with_transformers(vocab_file, tmp_path):
    ours, theirs = _tokenizers(vocab_file, do_lower_case=True)
    theirs.save_pretrained(tmp_path / "t")
    loaded = Wav2Vec2CTCTokenizer.from_pretrained(tmp_path / "t")
    assert loaded.do_lower_case and loaded.word_delimiter_token == "|"
    assert loaded("hello world").input_ids == theirs("hello world").input_ids
    ours.save_pretrained(tmp_path / "o")
    back = transformers.Wav2Vec2CTCTokenizer.from_pretrained(tmp_path / "o")
    assert back("hello world").input_ids == ours("hello world").input_ids
    assert back.decode(SEQUENCES[0]) == ours.decode(SEQUENCES[0])


@pytest.fixture()
def transformers_processor_dir(vocab_file, tmp_path):
    processor = transformers.Wav2Vec2Processor(
        transformers.Wav2Vec2FeatureExtractor(return_attention_mask=True), transformers.Wav2Vec2CTCTokenizer(vocab_file)
    )
    processor.save_pretrained(tmp_path / "p")
    return tmp_path / "p"


def test_processor_loads_transformers_dir_and_matches(transformers_processor_dir):
    ours = AutoProcessor.from_pretrained(transformers_processor_dir)
    assert isinstance(ours, Wav2Vec2Processor)
    assert isinstance(ours.feature_extractor, Wav2Vec2FeatureExtractor)
    assert isinstance(ours.tokenizer, Wav2Vec2CTCTokenizer)
    theirs = transformers.Wav2Vec2Processor.from_pretrained(transformers_processor_dir)
    kwargs = dict(sampling_rate=16000, padding=True, return_tensors="np")
    _assert_batches_equal(ours(_speech(), **kwargs), theirs(_speech(), **kwargs))
    both = ours(_speech()[0], sampling_rate=16000, text="HELLO WORLD")
    assert both["labels"] == theirs(_speech()[0], sampling_rate=16000, text="HELLO WORLD")["labels"]
    assert ours(text="HELLO").input_ids == theirs(text="HELLO").input_ids
    assert ours.batch_decode(SEQUENCES[:2]) == theirs.batch_decode(SEQUENCES[:2])
    assert ours.decode(SEQUENCES[0]) == theirs.decode(SEQUENCES[0])


def test_auto_feature_extractor_on_transformers_processor_dir(transformers_processor_dir):
    assert isinstance(AutoFeatureExtractor.from_pretrained(transformers_processor_dir), Wav2Vec2FeatureExtractor)


def test_feature_extractor_class_loads_transformers_processor_dir(transformers_processor_dir):
    fe = Wav2Vec2FeatureExtractor.from_pretrained(transformers_processor_dir)
    assert fe.return_attention_mask is True


def test_our_processor_loads_in_transformers(vocab_file, tmp_path):
    ours = Wav2Vec2Processor(Wav2Vec2FeatureExtractor(), Wav2Vec2CTCTokenizer(vocab_file))
    ours.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "preprocessor_config.json").read_text())["processor_class"] == "Wav2Vec2Processor"
    theirs = transformers.Wav2Vec2Processor.from_pretrained(tmp_path)
    assert theirs.decode(SEQUENCES[0]) == ours.decode(SEQUENCES[0])
    assert isinstance(AutoProcessor.from_pretrained(tmp_path), Wav2Vec2Processor)
    assert isinstance(AutoFeatureExtractor.from_pretrained(tmp_path), Wav2Vec2FeatureExtractor)
