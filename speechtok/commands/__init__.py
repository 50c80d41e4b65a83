"""CLI subcommands. Each module exposes `register(subparsers) -> None`.

A module registers its parser and sets `func=` on it; `func(args) -> int` returns the exit code.
The tuple `speechtok.cli.COMMANDS` decides what `speechtok --help` shows.
"""
