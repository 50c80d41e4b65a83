"""Helpers shared by the runner tests: a tiny generated corpus, one recipe (in process or as a
YAML file), `speechtok run` in a fresh process, output snapshots and completeness checks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speechtok.manifests.tone_corpus import write_tone_corpus
from speechtok.pipeline.recipe import Recipe, recipe_from_dict
from speechtok.pipeline.runner import RunOptions

#: Run options of the in-process tests: no progress bar.
QUIET = RunOptions(progress=False)


def make_corpus(root: Path, n: int = 10, seed: int = 0) -> Path:
    """`n` wav files (16 kHz, 0.5-1.4 s of tones + noise) with `.txt` sidecars."""
    return write_tone_corpus(root, n, seed=seed)


#: ingest -> fbank (40 bins) -> k-means units (k=4), 3 cuts per shard; ``${corpus}`` unset.
RECIPE: dict[str, Any] = {
    "vars": {"corpus": "", "k": 4},
    "ingest": {"source": "${corpus}", "sample_rate": 16000},
    "shards": {"cuts_per_shard": 3},
    "stages": [
        {"type": "fbank", "name": "fbank", "config": {"num_mel_bins": 40}},
        {"type": "kmeans_units", "name": "km", "input": "feats.fbank",
         "config": {"k": "${k}", "iterations": 4, "frame_budget": 3000}},
    ],
}


def recipe_dict(corpus: Path, **fields: Any) -> dict[str, Any]:
    """`RECIPE` over `corpus`, top-level fields replaced by `fields` (e.g. ``stages=[...]``)."""
    import copy

    return copy.deepcopy({**RECIPE, "vars": {**RECIPE["vars"], "corpus": str(corpus)}, **fields})


def small_recipe(corpus: Path, **sets: Any) -> Recipe:
    """`RECIPE` over `corpus` as a `Recipe`; `sets` as ``--set`` overrides."""
    return recipe_from_dict(recipe_dict(corpus), sets=sets)


def write_recipe(path: Path, corpus: Path, **fields: Any) -> Path:
    """`recipe_dict(corpus, **fields)` as a YAML recipe file at `path`."""
    import yaml

    path.write_text(yaml.safe_dump(recipe_dict(corpus, **fields)))
    return path


@dataclass(frozen=True)
class CliSetup:
    """A test module's working folder, its 10-cut corpus and the `RECIPE` file over it (the
    ``cli_setup`` fixture of ``tests/pipeline/conftest.py``)."""

    root: Path
    corpus: Path
    recipe: Path


#: A stage type from a module outside the package: ``--plugin DIR TYPE MODULE:CLASS`` first.
_PLUGIN_MAIN = (
    "import sys\n"
    "if sys.argv[1] == '--plugin':\n"
    "    d, t, target = sys.argv[2:5]\n"
    "    del sys.argv[1:5]\n"
    "    sys.path.insert(0, d)\n"
    "    from speechtok.pipeline.stage_types import register_stage_type\n"
    "    register_stage_type(t, target)\n"
    "from speechtok.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n")


def cli_run(recipe: Path, out: Path, *flags: str, env: dict[str, str] | None = None,
            executor: tuple[str, ...] = ("--executor", "inline"),
            plugin: tuple[Path, str, str] | None = None, fsize: int | None = None,
            popen: bool = False, timeout: float = 600) -> Any:
    """``speechtok run RECIPE -o OUT --no-progress EXECUTOR FLAGS`` in a fresh process.

    ``MKL_CBWR`` is set (reproducible bytes across processes); ``SPEECHTOK_FAULT*`` variables of
    this process are dropped, `env` added. `plugin` = (dir, type, "module:Class") registers a
    stage type first; `fsize` caps the size of any file the run writes (RLIMIT_FSIZE).
    Returns the `subprocess.CompletedProcess`, or the `Popen` with ``popen=True``.
    """
    import os
    import resource
    import signal
    import subprocess
    import sys

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SPEECHTOK_FAULT")}
    full_env.update({"MKL_CBWR": "AUTO,STRICT", "PYTHONDONTWRITEBYTECODE": "1", **(env or {})})
    head = [sys.executable, "-c", _PLUGIN_MAIN]
    if plugin is not None:
        head += ["--plugin", str(plugin[0]), plugin[1], plugin[2]]
    cmd = [*head, "run", str(recipe), "-o", str(out), "--no-progress", *executor, *flags]

    def limit() -> None:
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    if popen:
        return subprocess.Popen(cmd, env=full_env, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    return subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=limit if fsize is not None else None)


def snapshot(out: Path) -> dict[str, str]:
    """sha256 of every shard file and of index.json (what must be byte-identical)."""
    files = sorted((out / "shards").glob("*.arrow")) + [out / "index.json"]
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def leftovers(out: Path) -> list[str]:
    """Temporary files a finished run must not leave behind."""
    return sorted(str(p.relative_to(out)) for p in out.rglob("*")
                  if ".tmp" in p.name or p.name.endswith(".partial"))


def assert_complete(out: Path, reference: dict[str, str], cuts: int = 10) -> None:
    """`out` is byte-identical to `reference` (a `snapshot`), has no leftovers and no
    quarantined cut, and every group's committed shards (checksums verified) hold each of the
    `cuts` ids exactly once."""
    from speechtok.shards.file import ShardFile
    from speechtok.shards.index import ShardIndex, shard_path

    assert snapshot(out) == reference
    assert leftovers(out) == []
    assert (out / "quarantine.jsonl").read_text() == ""  # 0 cuts lost
    index = ShardIndex.load(out)
    for group in index.groups():
        ids: list[str] = []
        for e in index.entries(group):
            sf = ShardFile(shard_path(out, e.shard, group), e, group=group, checksum=True)
            ids += sf.all_ids().to_pylist()
            sf.close()
        assert len(ids) == cuts and len(set(ids)) == cuts, group  # none duplicated or missing


def listening_addresses(root_pid: int | None = None) -> dict[str, set[str]]:
    """Listening TCP addresses of a process and all its descendants (Ray's GCS, raylets,
    agents, workers): {ip: {"name:port", ...}}."""
    import os

    import psutil

    me = psutil.Process(root_pid or os.getpid())
    found: dict[str, set[str]] = {}
    for proc in [me, *me.children(recursive=True)]:
        try:
            # psutil >= 6 names it net_connections; 5.x connections
            getter = getattr(proc, "net_connections", None) or proc.connections
            conns = getter(kind="tcp")
            name = proc.name()
        except psutil.Error:  # it exited meanwhile
            continue
        for c in conns:
            if c.status == psutil.CONN_LISTEN:
                ip = c.laddr.ip.removeprefix("::ffff:")
                found.setdefault(ip, set()).add(f"{name}:{c.laddr.port}")
    return found
