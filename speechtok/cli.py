"""`speechtok` command line: one subcommand per module in `speechtok.commands` (`COMMANDS`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from speechtok import __version__, hub
from speechtok.atomic import check_dir_path
from speechtok.commands import (
    compare,
    demo,
    export,
    ingest,
    inspect,
    run,
    tokenizers,
    train,
    transcribe,
    units,
    verify,
)
from speechtok.errors import BugError, SpeechtokError

#: Subcommand modules, in the order `--help` lists them; each has `register(subparsers)`.
COMMANDS = (ingest, run, inspect, verify, export, units, tokenizers, train, transcribe, compare, demo)


def build_parser() -> argparse.ArgumentParser:
    """Builds the top-level parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="speechtok",
        description=(
            "Turn speech corpora into speech-LLM training data (manifests, features, semantic "
            "and acoustic tokens, Arrow shards) and train text, latent and token models."
        ),
    )
    parser.add_argument("--version", action="version", version=f"speechtok {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `speechtok` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    hub.configure_from_args(args)  # offline unless this command took --allow-download
    try:
        if isinstance(getattr(args, "output", None), str):  # every -o of speechtok is a directory
            check_dir_path(args.output)
        return int(args.func(args))
    except BugError:
        raise  # a broken invariant: the traceback is the report
    except SpeechtokError as exc:
        print(f"speechtok {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"speechtok {args.command}: interrupted", file=sys.stderr)
        return 130
