"""What each of the project's error types means for a run: bad input is quarantined, a broken
invariant (`BugError`) stops the run with its traceback, also through the CLI."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from speechtok import atomic, cli, failures
from speechtok.errors import BugError, ConfigError, InputError, SpeechtokError, check_at_least
from speechtok.manifests.quarantine import Problem, QuarantineWriter
from speechtok.shards.index import ShardEntry
from speechtok.shards.schema import GroupMeta


def test_bug_error_is_a_bug_and_input_error_bad_input() -> None:
    assert issubclass(BugError, SpeechtokError)
    assert failures.classify(BugError("x")) == failures.BUG
    assert failures.classify(InputError("cut-1", "silent")) == failures.BAD_INPUT
    record = failures.failure_record(BugError("broken"), stage="fbank", shard=3)
    assert record["class"] == failures.BUG and "BugError: broken" in record["traceback"]


def _parser_raising(exc: Exception) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speechtok")
    sub = parser.add_subparsers(dest="command")

    def fail(args: argparse.Namespace) -> int:
        raise exc

    sub.add_parser("boom").set_defaults(func=fail)
    return parser


def test_cli_lets_a_bug_through_with_its_traceback(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli, "build_parser", lambda: _parser_raising(BugError("invariant broken")))
    with pytest.raises(BugError, match="invariant broken"):
        cli.main(["boom"])
    monkeypatch.setattr(cli, "build_parser", lambda: _parser_raising(ConfigError("k", 1, "must be >= 2")))
    assert cli.main(["boom"]) == 1  # a configuration error is one line, no traceback
    assert "speechtok boom: error: `k` must be >= 2, but is 1 instead." in capsys.readouterr().err


def test_quarantine_writer_outside_its_block_is_a_bug(tmp_path: Path) -> None:
    writer = QuarantineWriter(tmp_path / "quarantine.jsonl")
    with pytest.raises(BugError, match="outside its `with` block"):
        writer.write(Problem(reason="silent", detail="all zeros", id="a"))
    with pytest.raises(BugError, match="before a clean exit"):
        writer.commit()


def test_atomic_open_bad_mode_is_a_bug(tmp_path: Path) -> None:
    with pytest.raises(BugError, match="'a'"), atomic.atomic_open(tmp_path / "f", "a"):
        pass


@pytest.mark.parametrize("text, detail", [
    ("[1, 2]", "not a JSON object"),
    ('{"schema_version": "1"}', "bad schema_version '1'"),
    ('{"schema_version": 0}', "bad schema_version 0"),
])
def test_corrupt_group_meta_is_input_error(text: str, detail: str) -> None:
    with pytest.raises(InputError, match=detail) as info:
        GroupMeta.from_json(text, source="shard-00000.arrow")
    assert info.value.item == "shard-00000.arrow"


@pytest.mark.parametrize("change, detail", [
    ({"rows": "7"}, "but are '7'/"),
    ({"sha256": None}, "/None\\)"),
    ({"extra": 1}, "unexpected keyword"),
])
def test_malformed_index_entry_is_input_error(change: dict[str, object], detail: str) -> None:
    entry = {"group": "feats.fbank", "shard": 0, "path": "x", "sha256": "ab", "rows": 7, "bytes": 10,
             "fingerprint": "f"}
    with pytest.raises(InputError, match=detail) as info:
        ShardEntry.from_dict({**entry, **change}, source="index.jsonl line 3")
    assert info.value.item == "index.jsonl line 3"
    with pytest.raises(InputError, match="malformed index entry"):
        ShardEntry.from_dict(["not", "a", "mapping"], source="index.jsonl line 4")


def test_check_at_least_names_the_first_value_below_the_bound() -> None:
    check_at_least(1, workers=1, threads=8, max_batch_size=None)  # None is "no bound": passes
    with pytest.raises(ConfigError, match=r"`threads` must be >= 1, but is 0 instead\.") as err:
        check_at_least(1, workers=2, threads=0, num_shards=-1)
    assert (err.value.field, err.value.value) == ("threads", 0)
    with pytest.raises(ConfigError, match=r"`context_s` must be >= 0, but is -0.5 instead\."):
        check_at_least(0, context_s=-0.5)
