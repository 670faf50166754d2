"""The ``polyformers`` command: ``run``, ``convert``, ``plugins``, ``env``."""

from __future__ import annotations

import argparse
import sys


def _convert(args: argparse.Namespace) -> int:
    from .convert import convert

    cls = convert(args.src, args.dst, to=args.to, safe_serialization=args.safetensors, model_class=args.model_class)
    print(f"wrote {args.dst} ({cls.__name__})")
    return 0


def _run(args: argparse.Namespace) -> int:
    """One JSON line per input; inputs from the arguments, else a file, else standard input."""
    import json

    from .pipelines import run_command

    if args.inputs:
        inputs = args.inputs
    else:
        stream = open(args.file, encoding="utf-8") if args.file else sys.stdin
        with stream:
            inputs = [line.rstrip("\n") for line in stream if line.strip()]
    options = ("chunk_length_s", "stride_length_s", "return_timestamps", "top_k", "threshold", "subtask")
    params = {key: getattr(args, key) for key in options if getattr(args, key) is not None}
    for result in run_command(args.task, args.model, inputs, batch_size=args.batch_size, **params):
        print(json.dumps(result, ensure_ascii=False, default=_jsonable))
    return 0


def _jsonable(value: object) -> object:
    """JSON for what pipelines return beside plain values: a PIL image (a segmentation mask) becomes a PNG data URI."""
    if hasattr(value, "save") and hasattr(value, "mode"):
        import base64
        import io

        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    if hasattr(value, "tolist"):  # numpy / torch values
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _plugins(args: argparse.Namespace) -> int:
    from .plugins import list_plugins

    plugins = list_plugins(activate=args.activate)
    if not plugins:
        print("no polyformers plugins installed (pip install polyformers-bert, for example)")
    for info in plugins:
        print(info)
    return 1 if any(p.status == "failed" for p in plugins) else 0


def _env(args: argparse.Namespace) -> int:
    """What to paste into a bug report: versions (read from metadata: nothing heavy is imported)."""
    import importlib.metadata
    import os
    import platform

    from . import __version__
    from .plugins import list_plugins

    def version(distribution: str) -> str:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    rows = {
        "polyformers-core": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": version("torch"),
        "tensorflow": version("tensorflow-cpu") if version("tensorflow") == "not installed" else version("tensorflow"),
        "keras": version("keras"),
        "jax": version("jax"),
        "flax": version("flax"),
        "tokenizers": version("tokenizers"),
        "safetensors": version("safetensors"),
        "huggingface_hub": version("huggingface_hub"),
    }
    for key in ("HF_HUB_OFFLINE", "HF_HOME", "POLYFORMERS_PREFER"):
        rows[key] = os.environ.get(key, "(unset)")
    rows["plugins"] = ", ".join(f"{p.distribution} {p.version} ({', '.join(p.model_types)})" for p in list_plugins()) or "none"
    width = max(len(k) for k in rows)
    for key, value in rows.items():
        print(f"{key:<{width}}  {value}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="polyformers", description="polyformers command line")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a pipeline task on texts, audio or image files: one JSON line out per input")
    run.add_argument("task", help="e.g. feature-extraction, sentence-embeddings, fill-mask, text-classification, automatic-speech-recognition")
    run.add_argument("--model", required=True, help="a directory written by save_pretrained, or a cached hub repo id")
    run.add_argument("--file", help="read inputs from this file, one per line (default: standard input)")
    run.add_argument("--batch-size", type=int, default=8)
    run.add_argument("--top-k", type=int, help="results per input (fill-mask, text and audio classification)")
    run.add_argument("--chunk-length-s", type=float, help="automatic-speech-recognition: transcribe long audio in windows of this many seconds")
    run.add_argument("--stride-length-s", type=float, help="automatic-speech-recognition: context on each side of a window (default chunk/6)")
    run.add_argument("--return-timestamps", choices=("char", "word"), help="automatic-speech-recognition: add timed chunks")
    run.add_argument("--threshold", type=float, help="object-detection / image-segmentation: the score a result needs")
    run.add_argument("--subtask", choices=("panoptic", "instance", "semantic"), help="image-segmentation: which segmentation (masks come out as PNG data URIs)")
    run.add_argument("inputs", nargs="*", help="input texts, or audio / image file paths for those tasks (else --file or standard input)")
    run.set_defaults(run=_run)

    convert = commands.add_parser("convert", help="write a checkpoint's weights for another framework")
    convert.add_argument("src", help="directory written by save_pretrained (ours or Transformers')")
    convert.add_argument("dst", help="directory to write")
    convert.add_argument("--to", required=True, choices=("pt", "tf", "flax"))
    group = convert.add_mutually_exclusive_group()
    group.add_argument("--safetensors", dest="safetensors", action="store_true", default=None, help="write model.safetensors")
    group.add_argument("--no-safetensors", dest="safetensors", action="store_false", help="write the framework's own format")
    convert.add_argument("--model-class", help="target class name when config.json names no architecture")
    convert.set_defaults(run=_convert)

    plugins = commands.add_parser("plugins", help="list installed plugins, their model types and load errors")
    plugins.add_argument("--no-activate", dest="activate", action="store_false", help="only read metadata")
    plugins.set_defaults(run=_plugins)

    env = commands.add_parser("env", help="versions of polyformers, Python, the frameworks and plugins (for bug reports)")
    env.set_defaults(run=_env)

    args, extra = parser.parse_known_args(argv)
    # argparse gives a nargs="*" positional its (empty) value at the first positional it sees, so
    # inputs written after the options (run TASK --model M a.wav b.wav) come back unparsed.
    if args.command == "run" and extra and not any(e.startswith("-") for e in extra):
        args.inputs = [*args.inputs, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.run(args)
    except (OSError, ValueError, ImportError) as exc:
        print(f"polyformers {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
