"""Synthesise the real-speech test clip ``tests/data/speech_espeak.wav`` with eSpeak NG.

Run once by a developer (the clip is committed; tests never synthesise):

    pip install espeakng-loader soundfile && python scripts/make_speech_fixture.py

eSpeak NG (through the ``espeakng-loader`` wheel, which bundles ``libespeak-ng`` and its data)
speaks the sentences below at its native 22 050 Hz, 16-bit mono; the clip is stored as it comes,
so the pipelines' resampling to 16 kHz is exercised on a real file.
"""

from __future__ import annotations

import ctypes
import pathlib
import sys

import numpy as np
import soundfile

TEXT = "The quick brown fox jumps over the lazy dog. Speech recognition turns sound into words."
OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "speech_espeak.wav"

AUDIO_OUTPUT_SYNCHRONOUS = 2
POS_CHARACTER = 1
SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def synthesise(text: str) -> tuple[np.ndarray, int]:
    import espeakng_loader

    lib = ctypes.cdll.LoadLibrary(espeakng_loader.get_library_path())
    sample_rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
    if sample_rate <= 0:
        raise RuntimeError(f"espeak_Initialize failed ({sample_rate})")
    chunks: list[np.ndarray] = []

    def on_audio(wav, count, _events):
        if count > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0

    callback = SYNTH_CALLBACK(on_audio)
    lib.espeak_SetSynthCallback(callback)
    if lib.espeak_SetVoiceByName(b"en-us") != 0:
        raise RuntimeError("eSpeak NG has no en-us voice")
    data = text.encode() + b"\0"
    if lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, 0, None, None) != 0:
        raise RuntimeError("espeak_Synth failed")
    lib.espeak_Synchronize()
    return np.concatenate(chunks), sample_rate


def main() -> int:
    audio, sample_rate = synthesise(TEXT)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(OUT, audio, sample_rate, subtype="PCM_16")
    print(f"{OUT}: {len(audio) / sample_rate:.2f} s at {sample_rate} Hz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
