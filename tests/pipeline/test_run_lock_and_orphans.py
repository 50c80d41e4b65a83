"""The run lock cannot race and still detects stale locks; no process outlives a killed run
(issue 14)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_runner_util import make_corpus

from speechtok.pipeline.lock import LockedError, RunLock

CONTENDER = r'''
import os, sys, time
from pathlib import Path
from speechtok.pipeline.lock import LockedError, RunLock
lock, marker, rounds = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
held = 0
for _ in range(rounds):
    try:
        with RunLock(lock):
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # fails if two hold it
            os.close(fd)
            time.sleep(0.002)
            os.unlink(marker)
            held += 1
    except LockedError:
        pass
print(held)
'''


def test_the_lock_is_never_held_twice_by_contending_processes(tmp_path: Path) -> None:
    script = tmp_path / "contender.py"
    script.write_text(CONTENDER)
    lock, marker = tmp_path / "run.lock", tmp_path / "marker"
    procs = [subprocess.Popen([sys.executable, str(script), str(lock), str(marker), "150"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_, stderr) in zip(procs, results, strict=True):
        assert p.returncode == 0, stderr  # FileExistsError on the marker = two holders
    assert sum(int(stdout) for stdout, _ in results) > 0
    assert not lock.exists()


def test_a_live_holder_with_an_empty_lock_file_is_not_taken_as_stale(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\n"
         "from speechtok.pipeline.lock import RunLock\n"
         "with RunLock(Path(sys.argv[1])):\n    print('held', flush=True)\n"
         "    sys.stdin.read()\n", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        path.write_text("")  # as if killed mid-write: the old protocol took this as stale
        with pytest.raises(LockedError, match="another run"):
            RunLock(path).acquire()
        holder.kill()  # SIGKILL: the kernel drops its flock
        holder.wait()
        with RunLock(path) as lock:  # stale now: taken
            assert lock.took_over is None or isinstance(lock.took_over, dict)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_array_tasks_share_the_run_lock_and_exclude_a_whole_run(tmp_path: Path) -> None:
    with RunLock(tmp_path / "run.lock", shared=True), \
            RunLock(tmp_path / "run.lock", shared=True):  # two array tasks side by side
        with pytest.raises(LockedError):
            RunLock(tmp_path / "run.lock").acquire()
    with RunLock(tmp_path / "run.lock"):
        with pytest.raises(LockedError):
            RunLock(tmp_path / "run.lock", shared=True).acquire()


# ---------------------------------------------------------------- orphans

DRIVER = r'''
import sys
from speechtok.cli import main
sys.exit(main(sys.argv[1:]))
'''

RECIPE = {
    "ingest": {"source": "", "sample_rate": 16000},
    "shards": {"cuts_per_shard": 3},
    "stages": [{"type": "fbank", "name": "fbank", "config": {"num_mel_bins": 40}}],
}

#: Kill points reached once the process pool is up: in a worker (which kills the runner, then
#: itself), or in the runner after its 4 cuts commits; the last one with two workers.
KILLS = [("in_process:1", "1"), ("before_commit:1", "1"), ("after_tmp_write:5", "1"),
         ("after_commit:5", "1"), ("in_process:2", "2")]


def _session_members(sid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process in session `sid`."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 3 and int(fields[3]) == sid and fields[0] != "Z":
            found.append((int(d.name), cmd))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and prctl (Linux)")
def test_no_process_outlives_five_sigkilled_runs(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus", n=10)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({**RECIPE, "ingest": {**RECIPE["ingest"],
                                                           "source": str(corpus)}}))
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for i, (fault, workers) in enumerate(KILLS):
        proc = subprocess.Popen(
            [sys.executable, str(driver), "run", str(recipe), "-o", str(tmp_path / f"out{i}"),
             "--executor", "local", "--workers", workers, "--no-progress"],
            env={**env, "SPEECHTOK_FAULT": fault}, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == -signal.SIGKILL, (fault, stderr[-2000:])
        # The session (the run and everything it started) must empty out. Death signals are
        # delivered asynchronously, so poll; an orphan never goes away and fails the test.
        deadline = time.monotonic() + 60
        left = _session_members(proc.pid)
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = _session_members(proc.pid)
        assert left == [], (fault, left)
