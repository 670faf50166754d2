"""The ``polyformers`` command: ``polyformers run``, ``polyformers convert``, ``polyformers plugins``."""

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
    for result in run_command(args.task, args.model, inputs, batch_size=args.batch_size):
        print(json.dumps(result, ensure_ascii=False))
    return 0


def _plugins(args: argparse.Namespace) -> int:
    from .plugins import list_plugins

    plugins = list_plugins(activate=args.activate)
    if not plugins:
        print("no polyformers plugins installed (pip install polyformers-bert, for example)")
    for info in plugins:
        print(info)
    return 1 if any(p.status == "failed" for p in plugins) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="polyformers", description="polyformers command line")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a pipeline task on texts: one JSON line out per input")
    run.add_argument("task", help="e.g. feature-extraction, sentence-embeddings, fill-mask, text-classification")
    run.add_argument("--model", required=True, help="a directory written by save_pretrained, or a cached hub repo id")
    run.add_argument("--file", help="read inputs from this file, one per line (default: standard input)")
    run.add_argument("--batch-size", type=int, default=8)
    run.add_argument("inputs", nargs="*", help="input texts (else --file or standard input)")
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

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (OSError, ValueError, ImportError) as exc:
        print(f"polyformers {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
