"""CUDA check of the Wav2Vec2 PyTorch models and the audio pipeline, run on a GPU machine when one is lent.

    python scripts/cuda_check_wav2vec2.py [--device cuda] [--json out.json]

With Transformers (and torchaudio, if installed) as references on the same machine:
1. every PyTorch head (and pretraining with given masks/negatives) matches Transformers in fp32 on the device;
2. a CTC training step on the device: loss equal to Transformers', finite gradients everywhere;
3. bf16 forward stays close to fp32;
4. Wav2Vec2-base ForCTC on 10 s of audio, ours vs Transformers, fp32 and bf16 (medians, interleaved);
5. our numpy resampling against torchaudio.functional.resample (CPU);
6. the automatic-speech-recognition pipeline on the device gives the CPU pipeline's output.
Needs polyformers-core and polyformers-wav2vec2 installed.

Seen on an H100 (torch 2.11+cu130, Transformers 5.17, torchaudio 2.11; 2026-11-26): fp32 parity
0.0 on every head and both norms; CTC training step finite, eval loss diff 0.0; bf16 relative diff
1.1e-2; base on 10 s fp32 6.62 vs 6.71 ms (0.99x), bf16 14.26 vs 14.37 ms; resampling vs
torchaudio <= 1.8e-7 with equal lengths; the pipeline's transcript on the GPU equals
Transformers' there (a random model's near-tied frames may decode differently on CPU and GPU).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import numpy as np
import torch

import polyformers

HEADS = ("Wav2Vec2Model", "Wav2Vec2ForCTC", "Wav2Vec2ForSequenceClassification", "Wav2Vec2ForAudioFrameClassification", "Wav2Vec2ForXVector")
TINY = dict(
    vocab_size=12, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, conv_dim=(32, 32), conv_kernel=(5, 3),
    conv_stride=(3, 2), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, classifier_proj_size=8, tdnn_dim=(8, 8), tdnn_kernel=(3, 1),
    tdnn_dilation=(1, 2), xvector_output_dim=8, layerdrop=0.0, mask_time_prob=0.05, num_codevectors_per_group=10, num_codevector_groups=2,
    codevector_dim=8, proj_codevector_dim=8,
)
VARIANTS = {"group": dict(feat_extract_norm="group"), "layer-stable": dict(feat_extract_norm="layer", do_stable_layer_norm=True)}


def main_output(out):
    for key in ("logits", "projected_states", "last_hidden_state"):
        if key in out and out[key] is not None:
            return out[key]
    return out[0]


def audio(batch: int = 2, samples: int = 4000, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    values = torch.randn(batch, samples, generator=g)
    mask = torch.ones(batch, samples, dtype=torch.long)
    mask[-1, -600:] = 0
    return values.to(device), mask.to(device)


def check_parity(device: str, results: dict) -> None:
    import transformers

    diffs = {}
    for variant, extra in VARIANTS.items():
        for name in (*HEADS, "Wav2Vec2ForPreTraining"):
            if name == "Wav2Vec2ForXVector" and variant == "layer-stable":
                continue
            with tempfile.TemporaryDirectory() as d:
                torch.manual_seed(0)
                theirs = getattr(transformers, name)(transformers.Wav2Vec2Config(**TINY, **extra)).eval()
                theirs.save_pretrained(d)
                ours = getattr(polyformers, name).from_pretrained(d).to(device).eval()
                theirs = theirs.to(device)
                values, mask = audio(device=device)
                kwargs = {"attention_mask": mask} if variant == "layer-stable" else {}
                if name == "Wav2Vec2ForPreTraining":
                    from polyformers_wav2vec2.modeling_wav2vec2 import _compute_mask_indices, _sample_negative_indices

                    frames = int(ours._get_feat_extract_output_lengths(values.shape[1]))
                    np.random.seed(0)
                    masked = _compute_mask_indices((values.shape[0], frames), 0.5, 2)
                    negatives = _sample_negative_indices((values.shape[0], frames), 4, masked)
                    kwargs |= {"mask_time_indices": torch.from_numpy(masked).to(device), "sampled_negative_indices": torch.from_numpy(negatives).to(device)}
                with torch.inference_mode():
                    a, b = ours(values, **kwargs), theirs(values, **kwargs)
                diff = float((main_output(a).float() - main_output(b).float()).abs().max())
                if name == "Wav2Vec2ForPreTraining":
                    diff = max(diff, float((a.loss - b.loss).abs()))
                diffs[f"{name}/{variant}"] = diff
    results["fp32_parity_max_abs_diff"] = diffs


def check_training(device: str, results: dict) -> None:
    import transformers

    with tempfile.TemporaryDirectory() as d:
        torch.manual_seed(0)
        transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(**TINY)).save_pretrained(d)
        ours = polyformers.Wav2Vec2ForCTC.from_pretrained(d).to(device).train()
        theirs = transformers.Wav2Vec2ForCTC.from_pretrained(d).to(device).train()
    for model in (ours, theirs):
        model.config.hidden_dropout = model.config.attention_dropout = 0.0
    values, mask = audio(device=device)
    labels = torch.tensor([[1, 2, 3, 4], [5, 6, -100, -100]], device=device)
    torch.manual_seed(1)
    loss = ours(values, labels=labels).loss
    loss.backward()
    bad = [n for n, p in ours.named_parameters() if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
    ours.eval(), theirs.eval()
    with torch.no_grad():
        eval_diff = float((ours(values, labels=labels).loss - theirs(values, labels=labels).loss).abs())
    results["training"] = {"ctc_loss": loss.item(), "params_without_finite_grad": bad, "eval_loss_diff_vs_transformers": eval_diff}


def check_bf16(device: str, results: dict) -> None:
    import transformers

    with tempfile.TemporaryDirectory() as d:
        torch.manual_seed(0)
        transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(**TINY)).save_pretrained(d)
        fp32 = polyformers.Wav2Vec2ForCTC.from_pretrained(d).to(device)
        bf16 = polyformers.Wav2Vec2ForCTC.from_pretrained(d, torch_dtype=torch.bfloat16).to(device)
    values, _ = audio(device=device)
    with torch.inference_mode():
        a, b = fp32(values).logits, bf16(values.to(torch.bfloat16)).logits.float()
    results["bf16_rel_diff"] = float((a - b).abs().max() / a.abs().max())


def timed_pair(a, b, repeats: int, sync) -> tuple[float, float]:
    for _ in range(3):
        a(), b()
    sync()
    ta, tb = [], []
    for _ in range(repeats):
        start = time.perf_counter(); a(); sync(); ta.append(time.perf_counter() - start)
        start = time.perf_counter(); b(); sync(); tb.append(time.perf_counter() - start)
    return statistics.median(ta) * 1e3, statistics.median(tb) * 1e3


def check_speed(device: str, results: dict) -> None:
    import transformers

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    with tempfile.TemporaryDirectory() as d:
        torch.manual_seed(0)
        transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(vocab_size=32)).save_pretrained(d)
        speed = {}
        for dtype in (torch.float32, torch.bfloat16):
            ours = polyformers.Wav2Vec2ForCTC.from_pretrained(d, torch_dtype=dtype).to(device).eval()
            theirs = transformers.Wav2Vec2ForCTC.from_pretrained(d, dtype=dtype).to(device).eval()
            x = torch.randn(1, 160000, device=device, dtype=dtype) * 0.1
            with torch.inference_mode():
                ms = timed_pair(lambda: ours(x).logits, lambda: theirs(x).logits, 20, sync)
            speed[str(dtype).replace("torch.", "")] = {"ours_ms": round(ms[0], 2), "transformers_ms": round(ms[1], 2), "ratio": round(ms[0] / ms[1], 3)}
    results["base_10s_forward"] = speed


def check_resample(results: dict) -> None:
    try:
        from torchaudio import functional as F
    except ImportError:
        results["resample_vs_torchaudio"] = "torchaudio not installed"
        return
    from polyformers.audio_utils import resample

    diffs = {}
    rng = np.random.default_rng(0)
    for orig in (8000, 11025, 22050, 32000, 44100, 48000):
        for length in (1, 17, 12345):
            x = (rng.standard_normal(length) * 0.3).astype(np.float32)
            ours = resample(x, orig, 16000)
            ref = F.resample(torch.from_numpy(x), orig, 16000).numpy()
            assert ours.shape == ref.shape, (orig, length, ours.shape, ref.shape)
            diffs[f"{orig}/{length}"] = float(np.abs(ours - ref).max())
    results["resample_vs_torchaudio_max_abs_diff"] = max(diffs.values())
    results["resample_vs_torchaudio"] = diffs


def check_pipeline(device: str, results: dict) -> None:
    import transformers

    with tempfile.TemporaryDirectory() as d:
        vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, **{c: i + 5 for i, c in enumerate("ETAONIHSRDLUMWCFGYPBVK'XJQZ")}}
        with open(f"{d}/vocab.json", "w") as f:
            json.dump(vocab, f)
        torch.manual_seed(0)
        config = transformers.Wav2Vec2Config(**{**TINY, "vocab_size": len(vocab), "initializer_range": 0.5}, pad_token_id=0)
        transformers.Wav2Vec2ForCTC(config).save_pretrained(d)
        transformers.Wav2Vec2Processor(feature_extractor=transformers.Wav2Vec2FeatureExtractor(), tokenizer=transformers.Wav2Vec2CTCTokenizer(f"{d}/vocab.json")).save_pretrained(d)
        x = (np.random.default_rng(0).standard_normal(16000 * 8) * 0.1).astype(np.float32)
        cpu = polyformers.pipeline("automatic-speech-recognition", model=d)(x, chunk_length_s=2.0, return_timestamps="word")
        gpu = polyformers.pipeline("automatic-speech-recognition", model=d, device=device)(x, chunk_length_s=2.0, return_timestamps="word")
        ref = transformers.pipeline("automatic-speech-recognition", model=d, device=device)(x, chunk_length_s=2.0, return_timestamps="word")
    results["asr_pipeline"] = {"device_equals_cpu": gpu == cpu, "device_equals_transformers_text": gpu["text"] == ref["text"], "chars": len(gpu["text"])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json")
    args = parser.parse_args()
    results: dict = {"device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu", "torch": torch.__version__}
    import transformers

    results["transformers"] = transformers.__version__
    for check in (check_parity, check_training, check_bf16, check_speed, check_pipeline):
        try:
            check(args.device, results)
        except Exception as exc:  # report every check, even after one fails
            results[check.__name__] = f"FAILED: {type(exc).__name__}: {exc}"
    try:
        check_resample(results)
    except Exception as exc:
        results["check_resample"] = f"FAILED: {type(exc).__name__}: {exc}"
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
