"""Ray executor: a private local Ray instance (127.0.0.1, no dashboard) gives the same bytes.

About 25 s on a busy 2-core machine (Ray's start-up dominates); the one Ray test of the fast
suite.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_runner_util import listening_addresses, make_corpus, small_recipe, snapshot

from speechtok.pipeline.runner import RunOptions, run


def test_ray_two_workers_match_the_local_pool(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Same bytes; and every port of the private Ray (GCS, raylet, agents, the actors) was
    bound to 127.0.0.1, read just before the runner shut it down."""
    pytest.importorskip("ray")
    from speechtok.pipeline.executors.ray import RayExecutor

    listening: list[dict[str, set[str]]] = []
    close = RayExecutor.close

    def close_after_looking(self: RayExecutor) -> None:
        listening.append(listening_addresses())
        close(self)

    monkeypatch.setattr(RayExecutor, "close", close_after_looking)
    corpus = make_corpus(tmp_path / "corpus", n=10)
    local = tmp_path / "local"
    run(small_recipe(corpus), local, RunOptions(progress=False, workers=1))
    out = tmp_path / "ray"
    rep = run(small_recipe(corpus), out, RunOptions(progress=False, executor="ray", workers=2))
    assert rep.executor == "ray" and all(s.shards_run == 4 for s in rep.stages)
    assert snapshot(out) == snapshot(local)
    import ray

    assert not ray.is_initialized()  # the runner shut down the Ray instance it started
    assert listening and listening[0] and set(listening[0]) == {"127.0.0.1"}, listening
