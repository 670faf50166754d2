"""The audio pipelines on Wav2Vec2: ``automatic-speech-recognition`` and ``audio-classification``.

Checkpoints are written by Transformers 5.x inside the test (tiny random models, a CTC vocabulary
of letters); the audio is a real recording, ``tests/data/speech_espeak.wav`` (eSpeak NG speech at
22 050 Hz, see ``scripts/make_speech_fixture.py``), and 60 s built from it. Our pipelines must give
Transformers' output exactly: text, timestamps, labels and scores, with and without chunking.
"""

from __future__ import annotations

import difflib
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from polyformers import pipeline
from polyformers.audio_utils import read_audio, resample
from polyformers.errors import AudioInputError

transformers = pytest.importorskip("transformers")

SPEECH = pathlib.Path(__file__).resolve().parents[3] / "tests" / "data" / "speech_espeak.wav"
LETTERS = "ETAONIHSRDLUMWCFGYPBVK'XJQZ"
TINY = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=37,
    conv_dim=(32, 32, 32),
    conv_kernel=(10, 3, 3),
    conv_stride=(5, 4, 4),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
    initializer_range=0.5,  # large random weights: varied tokens, so decoding is exercised
)


def _save_asr(path: pathlib.Path, **overrides) -> str:
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, **{c: i + 5 for i, c in enumerate(LETTERS)}}
    path.mkdir()
    (path / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = transformers.Wav2Vec2CTCTokenizer(str(path / "vocab.json"))
    stable = overrides.get("do_stable_layer_norm", False)
    extractor = transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True, return_attention_mask=stable)
    torch.manual_seed(0)
    config = transformers.Wav2Vec2Config(vocab_size=len(vocab), pad_token_id=0, **{**TINY, **overrides})
    transformers.Wav2Vec2ForCTC(config).eval().save_pretrained(path)
    transformers.Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def asr_dir(tmp_path_factory) -> str:
    return _save_asr(tmp_path_factory.mktemp("asr") / "group")


@pytest.fixture(scope="module")
def asr_stable_dir(tmp_path_factory) -> str:
    return _save_asr(tmp_path_factory.mktemp("asr") / "stable", feat_extract_norm="layer", do_stable_layer_norm=True)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """The recording at 16 kHz (our resampling; both pipelines then get the same samples)."""
    audio, rate = read_audio(SPEECH)
    return resample(audio, rate, 16000)


@pytest.fixture(scope="module")
def minute(speech) -> np.ndarray:
    """60 s: the recording repeated with quiet noise between the takes."""
    rng = np.random.default_rng(0)
    pieces, total = [], 0
    while total < 60 * 16000:
        gap = (rng.standard_normal(8000) * 0.01).astype(np.float32)
        pieces += [speech, gap]
        total += len(speech) + len(gap)
    return np.concatenate(pieces)[: 60 * 16000]


@pytest.fixture(scope="module")
def pipes(asr_dir):
    return pipeline("automatic-speech-recognition", model=asr_dir), transformers.pipeline("automatic-speech-recognition", model=asr_dir)


CALLS = [
    {},
    {"chunk_length_s": 1.0},
    {"chunk_length_s": 1.0, "stride_length_s": (0.2, 0.1)},
    {"return_timestamps": "char"},
    {"return_timestamps": "word"},
    {"return_timestamps": "word", "chunk_length_s": 1.5},
]


@pytest.mark.parametrize("call", CALLS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()) or "plain")
def test_asr_equals_transformers_on_speech(pipes, speech, call):
    ours, theirs = pipes
    result, expected = ours(speech.copy(), **call), theirs(speech.copy(), **call)
    assert result["text"] and result["text"] == expected["text"]
    assert result == expected  # chunks too: same texts, same (start, end) seconds
    if "chunks" in call or "return_timestamps" in call:
        assert all(isinstance(t, float) for c in result["chunks"] for t in c["timestamp"])  # JSON-ready


@pytest.mark.parametrize("chunk_length_s", [0, 10])
def test_asr_equals_transformers_on_a_minute(pipes, minute, chunk_length_s):
    ours, theirs = pipes
    result = ours(minute.copy(), chunk_length_s=chunk_length_s, return_timestamps="word")
    assert result == theirs(minute.copy(), chunk_length_s=chunk_length_s, return_timestamps="word")
    assert result["chunks"][-1]["timestamp"][1] <= 60.0


def test_chunked_agrees_with_unchunked_where_transformers_does(asr_stable_dir, speech):
    ours, theirs = pipeline("automatic-speech-recognition", model=asr_stable_dir), transformers.pipeline("automatic-speech-recognition", model=asr_stable_dir)
    for chunk in (1.0, 2.0, 6.0):
        ours_agree = ours(speech.copy(), chunk_length_s=chunk)["text"] == ours(speech.copy())["text"]
        theirs_agree = theirs(speech.copy(), chunk_length_s=chunk)["text"] == theirs(speech.copy())["text"]
        assert ours_agree == theirs_agree
    # A window longer than the recording is one window: the same transcript.
    assert ours(speech.copy(), chunk_length_s=6.0)["text"] == ours(speech.copy())["text"]


def test_asr_inputs_file_bytes_dict_and_tensor_agree(pipes, speech):
    ours, _ = pipes
    expected = ours(speech.copy())
    audio, rate = read_audio(SPEECH)
    assert rate == 22050
    assert ours(str(SPEECH)) == expected  # decoded, resampled 22.05 -> 16 kHz
    assert ours(SPEECH.read_bytes()) == expected
    assert ours({"raw": audio, "sampling_rate": rate}) == expected
    assert ours({"array": audio, "sampling_rate": rate, "path": "x.wav"}) == expected  # the datasets layout
    assert ours(torch.from_numpy(speech.copy())) == expected
    assert ours({"raw": speech, "sampling_rate": 16000, "id": 7}) == {**expected, "id": [7]}  # extra keys come back


def test_asr_batches_like_one_by_one(asr_stable_dir, speech):
    pipe = pipeline("automatic-speech-recognition", model=asr_stable_dir)
    inputs = [speech[: 16000 * s] for s in (3, 1, 5, 2)]
    one_by_one = [pipe(x) for x in inputs]
    assert pipe(inputs, batch_size=3) == one_by_one
    assert pipe([speech], batch_size=4, chunk_length_s=1.0) == [pipe(speech, chunk_length_s=1.0)]
    assert list(pipe(iter(inputs), batch_size=2)) == one_by_one


def test_audio_classification_equals_transformers(tmp_path, speech):
    config = transformers.Wav2Vec2Config(num_labels=4, id2label={i: f"LABEL_{c}" for i, c in enumerate("abcd")}, label2id={f"LABEL_{c}": i for i, c in enumerate("abcd")}, **TINY)
    torch.manual_seed(0)
    transformers.Wav2Vec2ForSequenceClassification(config).eval().save_pretrained(tmp_path)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(tmp_path)
    ours, theirs = pipeline("audio-classification", model=str(tmp_path)), transformers.pipeline("audio-classification", model=str(tmp_path))
    for call in ({}, {"top_k": 2}, {"top_k": 9}, {"function_to_apply": "sigmoid"}, {"function_to_apply": "none", "top_k": 1}):
        result, expected = ours(speech.copy(), **call), theirs(speech.copy(), **call)
        assert [r["label"] for r in result] == [e["label"] for e in expected]
        # rtol: with function_to_apply="none" the scores are logits (~22 here); the pipeline runs the
        # optimised path (oneDNN's grouped conv), which agrees with torch's to fp32 rounding (~3e-7 relative).
        np.testing.assert_allclose([r["score"] for r in result], [e["score"] for e in expected], rtol=1e-5, atol=1e-6)
    assert len(ours(str(SPEECH), top_k=3)) == 3
    with pytest.raises(ValueError, match="function_to_apply"):
        ours(speech, function_to_apply="relu")


def test_task_is_inferred_and_cli_runs(asr_dir, pipes, speech, tmp_path):
    from polyformers.pipelines.audio import AutomaticSpeechRecognitionPipeline

    assert isinstance(pipeline(model=asr_dir), AutomaticSpeechRecognitionPipeline)  # from config.architectures
    ours, _ = pipes
    completed = subprocess.run(
        [sys.executable, "-m", "polyformers.cli", "run", "automatic-speech-recognition", "--model", asr_dir, "--return-timestamps", "word", str(SPEECH)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    expected = ours(str(SPEECH), return_timestamps="word")
    printed = json.loads(completed.stdout.strip())
    assert printed["text"] == expected["text"]
    assert [tuple(c["timestamp"]) for c in printed["chunks"]] == [c["timestamp"] for c in expected["chunks"]]


# --- bad input: a typed error that names the input, never a crash --------------------------------


def test_bad_audio_inputs_raise_typed_errors(pipes, speech, tmp_path):
    ours, _ = pipes
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" + bytes(range(256)))
    silent = tmp_path / "no-frames.wav"
    import soundfile

    soundfile.write(silent, np.zeros(0, dtype=np.float32), 16000)
    cases = [
        (str(empty), "empty"),
        (str(corrupt), "could not be decoded"),
        (str(silent), "no samples"),
        (corrupt.read_bytes(), "audio bytes"),
        (np.zeros(0, dtype=np.float32), "0 samples"),
        (np.stack([speech, speech], axis=1), r"shape \(\d+, 2\).*transposed"),  # channels-last stereo
        (np.zeros((3, 4, 5), dtype=np.float32), "3 dimensions"),
        (np.array([0.1, np.nan, 0.2], dtype=np.float32), "NaN"),
        ({"raw": speech}, "'sampling_rate'"),
        ({"raw": speech, "sampling_rate": 0}, "orig_sr must be a positive"),
        ({"raw": np.zeros(0, dtype=np.float32), "sampling_rate": 8000}, "0 samples"),
        ("https://example.com/a.wav", "URL"),
    ]
    for bad, message in cases:
        with pytest.raises(AudioInputError, match=message):
            ours(bad)
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        ours(str(tmp_path / "missing.wav"))
    with pytest.raises(TypeError, match="expects audio"):
        ours(3.5)
    with pytest.raises(ValueError, match="return_timestamps"):
        ours(speech, return_timestamps="sentence")
    with pytest.raises(ValueError, match="superior to stride"):
        ours(speech, chunk_length_s=1.0, stride_length_s=0.6)
    # Channels-first stereo is mixed down, as Transformers 5 does.
    assert ours(np.stack([speech, speech])) == ours(speech)


def test_feature_extractor_refuses_a_wrong_sampling_rate(asr_dir, speech):
    from polyformers import AutoFeatureExtractor

    extractor = AutoFeatureExtractor.from_pretrained(asr_dir)
    with pytest.raises(AudioInputError, match="22050 Hz.*16000"):
        extractor(speech, sampling_rate=22050)


@pytest.mark.parametrize("framework", ["tf", "flax"])
def test_asr_in_tensorflow_and_flax(asr_dir, pipes, speech, framework):
    pytest.importorskip("tensorflow" if framework == "tf" else "flax")
    ours, _ = pipes
    other = pipeline("automatic-speech-recognition", model=asr_dir, framework=framework)
    assert type(other.model.wrapped).__name__ == ("TF" if framework == "tf" else "Flax") + "Wav2Vec2ForCTC"
    assert other(speech.copy(), return_timestamps="char") == ours(speech.copy(), return_timestamps="char")
    # Logits agree to ~1e-6 across frameworks, but random weights leave a few near-tied frames whose
    # argmax may flip: chunked transcripts must agree to within a character or two.
    chunked, expected = other(speech.copy(), chunk_length_s=1.0)["text"], ours(speech.copy(), chunk_length_s=1.0)["text"]
    assert difflib.SequenceMatcher(None, chunked, expected).ratio() > 0.99
