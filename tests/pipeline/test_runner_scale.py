"""Scale-out (issue 18): workers write their own shards, models load once per worker, GPU
stages are refused without a GPU, Slurm-style array tasks run concurrently, ``--plan``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_runner_util import QUIET, cli_run, make_corpus, small_recipe, snapshot, write_recipe

from speechtok.errors import ConfigError
from speechtok.manifests.synthetic_cuts import write_synthetic_cuts
from speechtok.pipeline.recipe import recipe_from_dict
from speechtok.pipeline.runner import RunOptions, run
from speechtok.shards.verify import verify_output


def test_two_workers_write_their_own_shards_byte_identical(tmp_path: Path, corpus: Path,
                                                          reference: Path) -> None:
    out = tmp_path / "out"
    rep = run(small_recipe(corpus), out, RunOptions(progress=False, workers=2))
    assert snapshot(out) == snapshot(reference)
    assert not list((out / "shards").glob("*.tmp*"))
    km = next(s for s in rep.stages if s.stage == "km")
    # k-means centroids: loaded once per worker process, not once per shard
    assert km.shards_run == 4 and km.model_loads and km.model_loads_per_worker == 1


def test_a_model_stage_loads_its_model_once_per_worker(tmp_path: Path, corpus: Path,
                                                      tiny_whisper_dir: Path) -> None:
    raw = {"ingest": {"source": str(corpus), "sample_rate": 16000},
           "shards": {"cuts_per_shard": 2},
           "stages": [{"type": "whisper", "name": "w", "config": {
               "model": str(tiny_whisper_dir), "backend": "transformers"}}]}
    rep = run(recipe_from_dict(raw), tmp_path / "out", RunOptions(progress=False, workers=2))
    w = next(s for s in rep.stages if s.stage == "w")
    assert w.shards_run == 5
    assert len(w.model_loads) <= 2 and set(w.model_loads.values()) == {1}


def test_a_cuda_stage_is_refused_clearly_without_a_gpu(tmp_path: Path, corpus: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    raw = {"ingest": {"source": str(corpus), "sample_rate": 16000},
           "stages": [{"type": "fbank", "name": "fb", "config": {"device": "cuda"}}]}
    with pytest.raises(ConfigError, match=r"fb.device.*must be 'cpu'.*--set fb.device=cpu"):
        run(recipe_from_dict(raw), tmp_path / "out", QUIET)
    raw["stages"][0]["config"]["device"] = "cpu"  # the same stage on the CPU runs
    run(recipe_from_dict(raw), tmp_path / "out", QUIET)


def test_concurrent_slurm_array_tasks_then_a_merge_run(tmp_path: Path, corpus: Path,
                                                       reference: Path) -> None:
    """Three ``SLURM_ARRAY_TASK_ID``-style processes at once on one output, as in the sbatch
    example of the docs; a final plain run commits nothing new and the output verifies."""
    recipe = write_recipe(tmp_path / "recipe.yaml", corpus)  # small_recipe's, as YAML
    out = tmp_path / "out"

    def cli(*args: str, task: int | None = None) -> subprocess.Popen[str]:
        env = None if task is None else {"SLURM_ARRAY_TASK_ID": str(task)}
        extra = () if task is None else ("--shard-index", str(task), "--num-shards", "3")
        return cli_run(recipe, out, *args, *extra, env=env, executor=(), popen=True)

    def wait_all(procs: list[subprocess.Popen[str]]) -> None:
        for p in procs:
            _, err = p.communicate(timeout=600)
            assert p.returncode == 0, err[-3000:]

    wait_all([cli("--until", "cuts")])
    wait_all([cli("--until", "fbank", task=i) for i in range(3)])  # concurrently
    wait_all([cli("--fit-only")])
    wait_all([cli(task=i) for i in range(3)])  # concurrently
    assert sorted(p.name for p in out.glob("report.shard-*.json")) == [
        f"report.shard-{i:05d}-of-00003.json" for i in range(3)]
    wait_all([cli()])  # merge: every shard committed already
    report = json.loads((out / "report.json").read_text())
    assert all(s["shards_run"] == 0 for s in report["stages"])
    assert verify_output(out).ok
    assert snapshot(out) == snapshot(reference)


@pytest.mark.slow
def test_plan_of_a_10000_hour_manifest(tmp_path: Path) -> None:
    """3.6 million cuts of 10 s; the limits (60 s, 2 GB) are the bench's figures
    `runner.plan_10kh_s` / `runner.plan_10kh_rss_mb`, not asserted here (no timed tests)."""
    manifest = tmp_path / "cuts.jsonl.gz"
    n = write_synthetic_cuts(manifest, 10_000, 10.0)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "ingest": {"source": str(manifest), "kind": "cuts"}, "shards": {"cuts_per_shard": 1000},
        "stages": [{"type": "fbank", "name": "fbank", "config": {"num_mel_bins": 80}},
                   {"type": "kmeans_units", "name": "km", "input": "feats.fbank",
                    "config": {"k": 500}}]}))
    proc = subprocess.run([sys.executable, "-m", "speechtok", "run", str(recipe), "-o",
                           str(tmp_path / "out"), "--plan", "--json"],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    plan = json.loads(proc.stdout)
    assert plan["cuts"] == n == 3_600_000 and round(plan["hours"]) == 10_000
    assert plan["shards"] == 3600
    fb = next(s for s in plan["stages"] if s["stage"] == "fbank")
    assert fb["bytes"] >= 10_000 * 3600 * 100 * 80 * 2  # 100 frames/s x 80 x float16
    assert fb["compute_hours"] > 0
    assert not (tmp_path / "out" / "shards").exists()  # nothing was run


def test_plan_of_a_small_manifest_matches_the_run(tmp_path: Path, corpus: Path,
                                                  reference: Path) -> None:
    recipe = small_recipe(corpus)
    from speechtok.pipeline.plan import plan_run

    plan = plan_run(recipe, reference)
    assert plan.cuts == 10 and plan.shards == 4
    fb = next(s for s in plan.stages if s.stage == "fbank")
    actual = sum(p.stat().st_size for p in (reference / "shards").glob("*.feats.fbank.arrow"))
    assert fb.bytes is not None and 0.5 * actual < fb.bytes < 1.5 * actual
    assert fb.rtf_source.startswith("measured")  # from the reference run's report.json


@pytest.mark.parametrize("chunk_bytes", [7, 64, 1 << 20])
def test_plan_reads_durations_across_chunk_boundaries(tmp_path: Path, chunk_bytes: int) -> None:
    """Chunks cut mid-line and a last line without a newline still count every cut once."""
    from speechtok.pipeline.plan import read_durations

    lines = [json.dumps({"id": f"c{i}", "duration": 0.5 + i, "extra": "x" * i}) for i in range(9)]
    path = tmp_path / "cuts.jsonl"
    path.write_text("\n".join(lines))  # no final newline
    assert read_durations(path, chunk_bytes=chunk_bytes) == (9, sum(0.5 + i for i in range(9)))


def _raylet_hosts(node: object, what: str) -> bool:
    """Whether the Ray node's raylet has a worker process titled `what` (e.g. an actor)."""
    import psutil
    from ray._private import ray_constants

    raylet = node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0]  # type: ignore[attr-defined]
    try:
        return any(what in " ".join(p.cmdline()) or what in p.name()
                   for p in psutil.Process(raylet.process.pid).children(recursive=True))
    except psutil.Error:
        return False


@pytest.mark.slow
def test_ray_cluster_losing_a_node_mid_run_is_byte_identical(tmp_path: Path) -> None:
    """Three one-CPU Ray nodes (and a head without CPUs), all on 127.0.0.1; once the first
    shard is committed, a node running one of the two `ShardWorker` actors is removed (its
    raylet, workers and queued jobs die). The run completes, byte-identical to a local run,
    and no Ray process listened anywhere but on loopback.

    Ray would swap 127.0.0.1 for the machine's primary interface when the driver connects
    (``resolve_ip_for_localhost``); `loopback_ray` keeps it (see its module). About 90 s on this busy 2-core machine."""
    import threading

    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster
    from test_runner_util import listening_addresses

    from speechtok.pipeline.executors.ray_loopback import LOOPBACK, loopback_ray

    corpus = make_corpus(tmp_path / "corpus", n=24)  # 8 shards per stage
    local = tmp_path / "local"
    run(small_recipe(corpus), local, QUIET)
    with loopback_ray():
        cluster = Cluster(initialize_head=True, connect=False, head_node_args={
            "num_cpus": 0, "node_ip_address": LOOPBACK, "include_dashboard": False})
    try:
        with loopback_ray():
            nodes = [cluster.add_node(num_cpus=1, node_ip_address=LOOPBACK) for _ in range(3)]
            cluster.wait_for_nodes()
            ray.init(address=cluster.address, log_to_driver=False)
        assert {n["NodeManagerAddress"] for n in ray.nodes()} == {LOOPBACK}
        out = tmp_path / "out"
        seen: dict[str, object] = {}

        def kill_one() -> None:
            while not list((out / "index.d").glob("feats.fbank.*.json")):
                threading.Event().wait(0.05)
            victim = next((n for n in nodes if _raylet_hosts(n, "ShardWorker")), None)
            seen["listening"] = listening_addresses()
            seen["committed_before"] = sum(1 for p in (out / "index.d").glob("*.json")
                                           if not p.name.startswith("cuts."))
            if victim is not None:
                cluster.remove_node(victim)  # its actor and the jobs queued on it die
                seen["removed"] = victim.unique_id

        killer = threading.Thread(target=kill_one, daemon=True)
        killer.start()
        rep = run(small_recipe(corpus), out, RunOptions(progress=False, executor="ray",
                                                        workers=2))
        killer.join(timeout=300)
        assert "removed" in seen, "no node hosted a ShardWorker actor when one was to be killed"
        assert len(ray.nodes()) - sum(n["Alive"] for n in ray.nodes()) == 1  # one node gone
        # the node was lost mid-run: fbank + units shards (16 in all) were committed after it
        assert isinstance(seen["committed_before"], int) and seen["committed_before"] < 16
        assert all(s.shards_run == 8 for s in rep.stages)
        assert snapshot(out) == snapshot(local)
        listening = seen["listening"]
        assert isinstance(listening, dict) and listening  # the cluster's GCS at least
        assert set(listening) <= {LOOPBACK}, f"Ray listened outside loopback: {listening}"
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_verify_sample_checks_a_few_shards_and_still_sees_the_index(tmp_path: Path,
                                                                    reference: Path) -> None:
    import shutil

    full = verify_output(reference)
    some = verify_output(reference, sample=1)
    assert full.ok and some.ok and 0 < some.files < full.files
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    (out / "index.d" / "feats.fbank.00002.json").unlink()  # an index-level problem
    index = json.loads((out / "index.json").read_text())
    index["shards"] = [e for e in index["shards"]
                       if not (e["group"] == "feats.fbank" and e["shard"] == 2)]
    (out / "index.json").write_text(json.dumps(index))
    rep = verify_output(out, sample=1, seed=1)
    assert not rep.ok and any("00002.feats.fbank" in p for p, _ in rep.problems)
