"""CUDA check of the PyTorch model code, run on a GPU machine when one is available.

    python scripts/cuda_check.py [--device cuda] [--json out.json]

Checks, with Transformers (if installed) as the reference on the same device:
1. a Transformers checkpoint loads and moves to the device; every BERT head matches in fp32;
2. a training step on the device gives finite gradients for every head;
3. decoder caching on the device equals a full forward;
4. bf16 and fp16 loading/forward stay close to fp32;
5. BERT-base forward time, ours vs Transformers, fp32 and bf16 (medians, interleaved);
6. with --flax: our Flax BERT on the GPU (JAX's default device) matches our PyTorch BERT, jit-timed.
Needs polyformers-core and polyformers-bert installed (the plugin is found through its metadata).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch

import polyformers

HEADS = (
    "BertModel",
    "BertForPreTraining",
    "BertForMaskedLM",
    "BertForNextSentencePrediction",
    "BertForSequenceClassification",
    "BertForMultipleChoice",
    "BertForTokenClassification",
    "BertForQuestionAnswering",
)
TINY = dict(vocab_size=99, hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=37, max_position_embeddings=64)


def inputs_for(name: str, device: str, batch: int = 3, seq: int = 9) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    shape = (batch, 4, seq) if name == "BertForMultipleChoice" else (batch, seq)
    ids = torch.randint(1, 99, shape, generator=g)
    mask = torch.ones(shape, dtype=torch.long)
    mask[-1, ..., -3:] = 0
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "token_type_ids": torch.randint(0, 2, shape, generator=g).to(device)}


def main_output(out):
    for key in ("logits", "prediction_logits", "start_logits", "last_hidden_state"):
        if key in out:
            return out[key]
    return out[0]


def check_parity(device: str, results: dict) -> None:
    import transformers

    diffs = {}
    for name in HEADS:
        with tempfile.TemporaryDirectory() as d:
            torch.manual_seed(0)
            theirs = getattr(transformers, name)(transformers.BertConfig(**TINY)).eval()
            theirs.save_pretrained(d)
            ours = getattr(polyformers, name).from_pretrained(d).to(device)
            theirs = theirs.to(device)
            x = inputs_for(name, device)
            with torch.no_grad():
                diffs[name] = (main_output(ours(**x)) - main_output(theirs(**x))).abs().max().item()
    results["fp32_parity_max_abs_diff"] = diffs
    assert max(diffs.values()) < 1e-4, diffs


def check_training(device: str, results: dict) -> None:
    losses = {}
    for name in HEADS[1:]:
        torch.manual_seed(0)
        model = getattr(polyformers, name)(polyformers.BertConfig(**TINY)).to(device).train()
        x = inputs_for(name, device)
        batch = x["input_ids"].shape[0]
        labels = {
            "BertForPreTraining": {"labels": x["input_ids"][..., :].clone(), "next_sentence_label": torch.zeros(batch, dtype=torch.long, device=device)},
            "BertForMaskedLM": {"labels": x["input_ids"].clone()},
            "BertForNextSentencePrediction": {"labels": torch.ones(batch, dtype=torch.long, device=device)},
            "BertForSequenceClassification": {"labels": torch.ones(batch, dtype=torch.long, device=device)},
            "BertForMultipleChoice": {"labels": torch.ones(batch, dtype=torch.long, device=device)},
            "BertForTokenClassification": {"labels": torch.ones_like(x["input_ids"])},
            "BertForQuestionAnswering": {"start_positions": torch.ones(batch, dtype=torch.long, device=device), "end_positions": torch.full((batch,), 2, device=device)},
        }[name]
        loss = model(**x, **labels).loss
        loss.backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
        assert missing == [], (name, missing)
        losses[name] = loss.item()
    results["training_losses"] = losses


def check_cache(device: str, results: dict) -> None:
    torch.manual_seed(0)
    model = polyformers.BertLMHeadModel(polyformers.BertConfig(**TINY, is_decoder=True, add_cross_attention=True)).to(device).eval()
    ids = torch.randint(1, 99, (2, 8), device=device)
    enc = torch.randn(2, 5, 64, device=device)
    with torch.no_grad():
        full = model(ids, encoder_hidden_states=enc).logits
        step = model(ids[:, :5], encoder_hidden_states=enc, use_cache=True)
        rest = model(ids[:, 5:], encoder_hidden_states=enc, past_key_values=step.past_key_values, use_cache=True)
    diff = (torch.cat([step.logits, rest.logits], 1) - full).abs().max().item()
    results["cache_max_abs_diff"] = diff
    assert diff < 1e-4, diff


def check_half(device: str, results: dict) -> None:
    with tempfile.TemporaryDirectory() as d:
        torch.manual_seed(0)
        polyformers.BertForMaskedLM(polyformers.BertConfig(**TINY)).save_pretrained(d)
        x = inputs_for("BertForMaskedLM", device)
        with torch.no_grad():
            ref = polyformers.BertForMaskedLM.from_pretrained(d).to(device)(**x).logits
            for dtype in (torch.bfloat16, torch.float16):
                model = polyformers.BertForMaskedLM.from_pretrained(d, torch_dtype=dtype).to(device)
                assert model.dtype == dtype
                out = model(**x).logits
                rel = ((out.float() - ref).abs().max() / ref.abs().max()).item()
                results[f"{str(dtype).split('.')[-1]}_relative_max_diff"] = rel
                assert rel < 5e-2, (dtype, rel)


def time_forward(device: str, results: dict, repeats: int) -> None:
    import transformers

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    with tempfile.TemporaryDirectory() as d:
        torch.manual_seed(0)
        transformers.BertModel(transformers.BertConfig()).save_pretrained(d)
        for dtype in (torch.float32, torch.bfloat16):
            ours = polyformers.BertModel.from_pretrained(d, torch_dtype=dtype).to(device)
            theirs = transformers.BertModel.from_pretrained(d, dtype=dtype).to(device).eval()
            x = {"input_ids": torch.randint(0, 30000, (8, 128), device=device)}
            times = {"polyformers": [], "transformers": []}
            with torch.inference_mode():
                for _ in range(3):
                    ours(**x), theirs(**x)
                for _ in range(repeats):
                    for label, model in (("polyformers", ours), ("transformers", theirs)):
                        sync()
                        start = time.perf_counter()
                        model(**x)
                        sync()
                        times[label].append(time.perf_counter() - start)
            medians = {k: statistics.median(v) * 1e3 for k, v in times.items()}
            medians["ratio_ours_over_theirs"] = medians["polyformers"] / medians["transformers"]
            results[f"bert_base_b8x128_{str(dtype).split('.')[-1]}_ms"] = medians


def check_flax(device: str, results: dict, repeats: int) -> None:
    import jax

    jax.config.update("jax_default_matmul_precision", "highest")  # true fp32, like allow_tf32=False
    results["jax_devices"] = [str(d) for d in jax.devices()]
    diffs = {}
    with tempfile.TemporaryDirectory() as d:
        for name in ("BertForMaskedLM", "BertForSequenceClassification", "BertForQuestionAnswering"):
            torch.manual_seed(0)
            pt = getattr(polyformers, name)(polyformers.BertConfig(**TINY)).eval()
            pt.save_pretrained(d)
            flax_model = getattr(polyformers, "Flax" + name).from_pretrained(d, from_pt=True)
            x = inputs_for(name, "cpu")
            with torch.no_grad():
                expected = main_output(pt.to(device)(**{k: v.to(device) for k, v in x.items()})).cpu().numpy()
            got = main_output(flax_model(**{k: v.numpy() for k, v in x.items()}))
            diffs[name] = float(abs(jax.device_get(got) - expected).max())
        results["flax_vs_pytorch_max_abs_diff"] = diffs
        assert max(diffs.values()) < 1e-4, diffs

        torch.manual_seed(0)
        polyformers.BertModel(polyformers.BertConfig()).save_pretrained(d)
        model = polyformers.FlaxBertModel.from_pretrained(d, from_pt=True)
        ids = jax.numpy.asarray(torch.randint(0, 30000, (8, 128)).numpy())
        for _ in range(3):
            model(ids).last_hidden_state.block_until_ready()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(ids).last_hidden_state.block_until_ready()
            times.append(time.perf_counter() - start)
        results["flax_bert_base_b8x128_fp32_ms"] = statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--flax", action="store_true", help="also check our Flax BERT on JAX's default device")
    args = parser.parse_args()
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # compare true fp32
        torch.backends.cudnn.allow_tf32 = False
    results = {"device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu", "torch": torch.__version__}
    for check in (check_parity, check_training, check_cache, check_half):
        check(args.device, results)
        print(f"ok  {check.__name__}", flush=True)
    time_forward(args.device, results, args.repeats)
    if args.flax:
        check_flax(args.device, results, args.repeats)
        print("ok  check_flax", flush=True)
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
