"""The results file's provenance, staleness rules and generated tables (bench/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import check, common, goals, report
from bench import provenance as prov


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake repository root with one benchmark file, results and README under it."""
    (tmp_path / "bench" / "results").mkdir(parents=True)
    (tmp_path / "bench" / "bench_demo.py").write_text("# demo benchmark\n")
    (tmp_path / "speechtok").mkdir()
    (tmp_path / "speechtok" / "thing.py").write_text("x = 1\n")
    monkeypatch.setattr(prov, "ROOT", tmp_path)
    monkeypatch.setattr(prov, "RESULTS", tmp_path / "bench" / "results" / "latest.json")
    monkeypatch.setattr(prov, "LOCK", tmp_path / "bench" / "results" / ".lock")
    monkeypatch.setattr(prov, "_SNAPSHOT", {})
    monkeypatch.setattr(report, "README", tmp_path / "bench" / "README.md")
    monkeypatch.setattr(goals, "REQUIRED", ())
    monkeypatch.setattr(check, "REQUIRED", ())
    monkeypatch.setenv(common.NAME_ENV, "demo")
    monkeypatch.setenv(common.RUN_ENV, "run-1")
    check._sha.cache_clear()
    return tmp_path


def test_record_keeps_provenance_per_figure(repo: Path) -> None:
    t = common.Timing(cpu_s=1.5, wall_s=2.0)
    common.record({"demo.peer_wall_s": common.Fig(3.0, timing=t),
                   "demo.speedup_vs_peer": common.Fig(1.5, peers=["demo.peer_wall_s"])},
                  notes={"demo.speedup_vs_peer": "a note"}, settings={"frames": 10}, threads=1)
    data = json.loads(prov.RESULTS.read_text())
    e = data["figures"]["demo.speedup_vs_peer"]
    for key in ("value", "unit", "date", "commit", "machine", "threads", "wall_s", "cpu_s",
                "settings", "loadavg", "code_sha", "run_id", "peers"):
        assert key in e, key
    assert e["unit"] == "x" and e["threads"] == 1 and e["settings"] == {"frames": 10}
    assert e["timing"] == "run" and len(e["loadavg"]) == 3
    p = data["figures"]["demo.peer_wall_s"]
    assert (p["wall_s"], p["cpu_s"], p["timing"], p["unit"]) == (2.0, 1.5, "figure", "s")
    assert check.problems() == []
    assert "a note" in report.README.read_text()
    assert not list(prov.RESULTS.parent.glob("*.tmp")), "temp file left behind"


def test_old_flat_format_is_stale(repo: Path) -> None:
    prov.RESULTS.write_text(json.dumps({"demo.x_s": 1.0, "date": "2026-01-01", "machine": "m"}))
    (prov.RESULTS.parent / "notes.json").write_text(json.dumps({"demo.x_s": "old note"}))
    data = prov.load()
    assert data["figures"]["demo.x_s"]["note"] == "old note"
    assert check.problems(data) == ["demo.x_s: old format without provenance: rerun its benchmark"]


def test_code_change_makes_figure_stale(repo: Path) -> None:
    common.record({"demo.a_s": 1.0}, code=["speechtok/thing.py"])
    assert check.problems() == []
    (repo / "speechtok" / "thing.py").write_text("x = 2\n")
    check._sha.cache_clear()
    [line] = check.problems()
    assert "code changed" in line and "speechtok/thing.py" in line


def test_figure_not_remeasured_by_newer_run_is_stale(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    common.record({"demo.a_s": 1.0, "demo.b_s": 2.0})
    common.begin_run("demo", "run-2")
    monkeypatch.setenv(common.RUN_ENV, "run-2")
    common.record({"demo.a_s": 1.1})
    common.end_run("demo", "run-2", ok=False)
    [line] = check.problems()
    assert line.startswith("demo.b_s: not re-measured by the newest run") and "failed" in line


def test_comparison_without_peer_or_with_missing_peer_fails(repo: Path) -> None:
    common.record({"demo.speedup_vs_lhotse": 2.0,
                   "demo.ratio_vs_x": common.Fig(1.0, peers=["demo.x_wall_s"])})
    lines = check.problems()
    assert any("demo.speedup_vs_lhotse: compares with a peer" in ln for ln in lines)
    assert any("demo.ratio_vs_x: peer demo.x_wall_s was not run" in ln for ln in lines)


def test_peer_from_another_run_fails(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    common.record({"demo.x_wall_s": 1.0})
    monkeypatch.setenv(common.NAME_ENV, "other")
    monkeypatch.setenv(common.RUN_ENV, "run-other")
    (repo / "bench" / "bench_other.py").write_text("# other\n")
    common.record({"other.speedup_vs_x": common.Fig(2.0, peers=["demo.x_wall_s"])})
    [line] = check.problems()
    assert "comes from another run" in line


def test_required_pattern_missing_fails(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(check, "REQUIRED", ("codecs.*.speedup_vs_nograd_loop",))
    assert check.problems({"figures": {}, "runs": {}}) == [
        "codecs.*.speedup_vs_nograd_loop: required figure missing; run `make bench`"]


def test_sections_blocks_are_generated_and_goals_shown(repo: Path) -> None:
    common.record({"demo.t_s": 0.5, "kmeans.speedup_vs_fairseq_mbkm": common.Fig(2.0, peers=["demo.t_s"])})
    doc = repo / "docs" / "sections"
    doc.mkdir(parents=True)
    (doc / "x.md").write_text("Intro.\n<!-- BENCH:BEGIN kmeans.* demo.t_s -->\nold 9.9x\n<!-- BENCH:END -->\nEnd.\n")
    changed = report.write_sections(folder=doc)
    text = (doc / "x.md").read_text()
    assert changed and "old 9.9x" not in text and "`demo.t_s`" in text
    assert ">= 3: **MISSED**" in text and text.endswith("<!-- BENCH:END -->\nEnd.\n")
    assert report.write_sections(folder=doc) == []  # idempotent


def test_grid_blocks_pivot_rows_and_columns(repo: Path) -> None:
    common.record({"cmp.text.test_wer": 0.25, "cmp.text.cer": 0.1, "cmp.latent.whisper_decoder.test_wer": 0.5,
                   "cmp.wall_s": 9.0})
    doc = repo / "docs" / "sections"
    doc.mkdir(parents=True)
    (doc / "g.md").write_text("<!-- BENCH:GRID cmp.*.test_wer cmp.*.cer -->\n| typed | 99% |\n<!-- BENCH:END -->\n")
    report.write_sections(folder=doc)
    lines = (doc / "g.md").read_text().splitlines()
    assert "99%" not in "\n".join(lines) and "`cmp.….test_wer`" in lines[1]
    rows = {ln.split("|")[1].strip(): [c.strip() for c in ln.split("|")[2:4]] for ln in lines[3:-1]}
    assert rows == {"latent.whisper_decoder": ["0.5", "-"], "text": ["0.25", "0.1"]}  # wall_s is no row
    with pytest.raises(ValueError, match="exactly one"):
        report.grid_table({"figures": {}}, ["cmp.*.*"])


def test_goal_and_unit_rules() -> None:
    assert goals.Goal(">=", 3.0).met(3.0) and not goals.Goal("<=", 1.005).met(1.01)
    assert common.guess_unit("machine.fsync_write_mb_s") == "MB/s"
    assert common.guess_unit("machine.sgemm_gflops_1t") == "GFLOP/s"
    assert common.guess_unit("kmeans.fit_cpu_s") == "s"
    assert common.guess_unit("kmeans.fairseq_mbkm_cpu_s") == "s"
    assert common.guess_unit("shards.feats_write_shar_wall_s_1mb") == "s"
    assert common.guess_unit("codecs.peak_rss_mb") == "MiB"
    assert common.guess_unit("shards.feats_write_mb_s_1kb") == "MB/s"
    assert common.guess_unit("shards.feats_write_over_fsync_floor") == "x"
    assert common.guess_unit("ingest.files_per_s") == "1/s"
    assert goals.needs_peer("kmeans.floor_efficiency") and not goals.needs_peer("kmeans.fit_cpu_s")


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f.json"
    target.write_text("old")

    def boom(a: str, b: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(prov.os, "replace", boom)
    with pytest.raises(OSError):
        prov.atomic_write_text(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_check_cli_exit_code(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common.record({"demo.a_s": 1.0})
    assert check.main() == 0
    common.record({"demo.speedup_vs_nothing": 2.0})
    assert check.main() == 1
    assert "STALE demo.speedup_vs_nothing" in capsys.readouterr().out


def test_code_sha_is_the_code_at_process_start(repo: Path) -> None:
    prov._SNAPSHOT.clear()
    prov.snapshot_code()
    (repo / "speechtok" / "thing.py").write_text("x = 3\n")  # changed while the benchmark ran
    common.record({"demo.a_s": 1.0}, code=["speechtok/thing.py"])
    check._sha.cache_clear()
    [line] = check.problems()
    assert "code changed" in line
    prov._SNAPSHOT.clear()


def _git(repo: Path, *args: str) -> str:
    import subprocess

    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                          check=True, capture_output=True, text=True).stdout.strip()


def test_moves_and_import_paths_keep_a_figure_fresh_real_changes_do_not(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import code_equiv

    body = "def work(n):\n    return sum(range(n)) * 2\n" * 30  # long enough for git's rename detection
    (repo / "speechtok" / "old").mkdir()
    (repo / "speechtok" / "old" / "mod.py").write_text('"""Old doc."""\nimport numpy\n\n' + body)
    (repo / "bench" / "bench_demo.py").write_text(
        "from speechtok.old.mod import work\nCODE = ['speechtok/old/mod.py']\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "measured")
    monkeypatch.setattr(prov, "commit", lambda: _git(repo, "rev-parse", "HEAD"))
    common.record({"demo.t_s": 1.0}, code=["speechtok/old/mod.py"])
    data = json.loads(prov.RESULTS.read_text())
    assert check.staleness("demo.t_s", data) is None

    def restale() -> str | None:
        check._sha.cache_clear()
        check._moved_only.cache_clear()
        code_equiv.renames.cache_clear()
        return check.staleness("demo.t_s", data)

    # moved, new docstring, reformatted, project import path and path strings follow the move
    (repo / "speechtok" / "new").mkdir()
    _git(repo, "mv", "speechtok/old/mod.py", "speechtok/new/mod.py")
    (repo / "speechtok" / "new" / "mod.py").write_text('"""New doc."""\nimport numpy\n\n\n' + body)
    (repo / "bench" / "bench_demo.py").write_text(
        "from speechtok.new.mod import (\n    work,\n)\nCODE = ['speechtok/new/mod.py']  # moved\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "layout")
    assert restale() is None
    # a change of behaviour is stale again
    (repo / "speechtok" / "new" / "mod.py").write_text('"""New doc."""\nimport numpy\n\n\n' + body + "X = 3\n")
    assert "code changed" in (restale() or "")
    # a third-party import is behaviour too
    (repo / "speechtok" / "new" / "mod.py").write_text('"""New doc."""\nimport scipy\n\n\n' + body)
    assert "code changed" in (restale() or "")
