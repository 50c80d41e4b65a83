"""Weighted mixing of corpora (`data.sources`): shares per 1,000-batch window, padding, exact
resume mid-epoch with several sources, repeat vs stop, vocabularies refused unless shared."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from speechtok.errors import ConfigError
from speechtok.tokenizers.vocab import VocabSpec
from speechtok.trainers.data import BatchingConfig, plan_batches
from speechtok.trainers.mixing import MixLoader, MixSchedule, mix_stats, parse_sources
from speechtok.trainers.token.dataset import load_source_utterances
from speechtok.trainers.token.recipe import TokenDataConfig
from speechtok.trainers.token.synthetic import write_synthetic_shards

ROOT = Path(__file__).resolve().parents[2]
CFG = BatchingConfig(max_tokens=4096, max_batch=64, pool_size=1024, seed=3)


def _lengths(n: int, seed: int, mean: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(np.log(mean), 0.5, n), 5, 2000).astype(np.int64)


def test_share_in_every_1000_batch_window_and_padding() -> None:
    big, small = _lengths(20000, 0, 200), _lengths(1500, 1, 80)
    # (the claim holds while every source is active: both cycle here; a stopped one gives 0)
    sched = MixSchedule([big, small], [0.7, 0.3], [True, True], CFG)
    stats = mix_stats(sched, 12000, window=1000)
    assert stats["max_share_error"] <= 0.02
    assert abs(stats["share"][0] - 0.7) <= 0.02
    assert stats["padding_frac"] < 0.05


def test_default_batching_pads_under_5_percent_for_a_mix() -> None:
    """The bench's mix (bench/bench_mix.py) with the trainers' default `BatchingConfig` (only the
    budget set): padding < 5% and the share bound hold; the old default pool (1024) pads more."""
    lengths = [_lengths(20000, 0, 200), _lengths(1500, 1, 80)]
    cfg = BatchingConfig(max_tokens=8192, max_batch=64, seed=0)
    stats = mix_stats(MixSchedule(lengths, [0.7, 0.3], [True, True], cfg), 6000, window=1000)
    assert stats["padding_frac"] < 0.05
    assert stats["max_share_error"] <= 0.02
    old = mix_stats(MixSchedule(lengths, [0.7, 0.3], [True, True], replace(cfg, pool_size=1024)), 6000)
    assert stats["padding_frac"] < old["padding_frac"]


def test_three_sources_uneven_weights() -> None:
    ls = [_lengths(5000, s, 100 + 50 * s) for s in range(3)]
    stats = mix_stats(MixSchedule(ls, [5, 3, 2], [True, True, True], CFG), 10000, window=1000)
    assert stats["max_share_error"] <= 0.02


def test_repeat_cycles_and_stop_ends_a_source() -> None:
    big, small = _lengths(4000, 0, 100), _lengths(300, 1, 100)
    n_small = len(plan_batches(small, replace(CFG, seed=CFG.seed + 7919), 0))
    n_big = len(plan_batches(big, CFG, 0))
    stop = MixSchedule([big, small], [0.5, 0.5], [False, False], CFG)
    picks = [stop.next()[0] for _ in range(n_big + n_small)]  # one mix epoch: each source once
    assert picks.count(1) == n_small and picks.count(0) == n_big
    assert picks[-1] == 0 and stop.state["epoch"] == 0  # the small one stopped, the big one went on
    stop.next()
    assert stop.state["epoch"] == 1  # then both start again
    rep = MixSchedule([big, small], [0.5, 0.5], [False, True], CFG)
    picks = [rep.next()[0] for _ in range(300)]
    assert picks.count(1) >= 149  # cycles: keeps its half


def _items(n: int, tag: int) -> list[dict[str, Any]]:
    return [{"src": tag, "i": i} for i in range(n)]


def _collate(items: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [(it["src"], it["i"]) for it in items]


def _loader(workers: int = 0, repeat: tuple[bool, ...] = (False, True, False)) -> MixLoader:
    a, b, c = _lengths(400, 0, 100), _lengths(120, 1, 60), _lengths(60, 2, 40)
    cfg = replace(CFG, max_tokens=1024, num_workers=workers)
    return MixLoader([_items(400, 0), _items(120, 1), _items(60, 2)], [a, b, c], _collate, cfg,
                     [0.5, 0.3, 0.2], list(repeat))


@pytest.mark.parametrize(("workers", "repeat"), [(0, (False, True, False)), (2, (False, True, False)),
                                                 (0, (False, False, False))])
def test_exact_resume_mid_epoch_with_several_sources(workers: int, repeat: tuple[bool, ...]) -> None:
    full = _loader(repeat=repeat)
    ref = [next(full) for _ in range(260)]
    srcs = full.state_dict()["sources"]
    if any(repeat):  # the cycling source went past its first epoch, a stopping one stopped
        assert srcs[1]["epoch"] >= 1 and not srcs[2]["active"]
    else:  # every source stopped once: the mix started its next epoch
        assert full.epoch >= 1
    first = _loader(workers, repeat)
    for _ in range(97):
        next(first)
    state = json.loads(json.dumps(first.state_dict()))  # as a checkpoint stores it
    again = _loader(workers, repeat)
    again.load_state_dict(state)
    assert [next(again) for _ in range(163)] == ref[97:]
    assert all(len({s for s, _ in b}) == 1 for b in ref)  # a batch comes from one source


def test_sources_are_parsed_and_checked() -> None:
    specs = parse_sources([{"shards": "A", "weight": 0.7}, {"shards": "B", "weight": 0.3, "repeat": True}])
    assert [s.repeat for s in specs] == [False, True]
    with pytest.raises(ConfigError, match=r"data.sources\[0\].weight"):
        parse_sources([{"shards": "A", "weight": 0}])
    with pytest.raises(ConfigError, match=r"data.sources\[0\].wieght"):
        parse_sources([{"shards": "A", "wieght": 1}])


def _patch_checksum(monkeypatch: pytest.MonkeyPatch, which: Path) -> None:
    from speechtok.shards.reader import ShardDataset

    real = ShardDataset.meta

    def meta(self: ShardDataset, group: str) -> Any:
        m = real(self, group)
        if group.startswith("units."):
            return replace(m, model_checksum="sha-b" if self.out_dir == which else "sha-a")
        return m

    monkeypatch.setattr(ShardDataset, "meta", meta)


def test_different_vocabularies_refused_unless_one_shared_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = write_synthetic_shards(tmp_path / "a", num_cuts=6)
    b = write_synthetic_shards(tmp_path / "b", num_cuts=4, seed=1)
    _patch_checksum(monkeypatch, b)
    srcs = ({"shards": str(a), "weight": 0.5}, {"shards": str(b), "weight": 0.5})
    with pytest.raises(ConfigError, match=r"data.sources\[1\].units.km32.*same vocabulary file"):
        load_source_utterances(TokenDataConfig(units="units.km32", sources=srcs))
    v1 = VocabSpec(text_size=10, units={"km32": 32}).save(tmp_path / "v1.json")
    v2 = VocabSpec(text_size=10, units={"km32": 40}).save(tmp_path / "v2.json")
    with pytest.raises(ConfigError):  # two different vocabulary files are no shared one
        load_source_utterances(TokenDataConfig(units="units.km32", sources=(
            {**srcs[0], "vocab": str(v1)}, {**srcs[1], "vocab": str(v2)})))
    per, vocab = load_source_utterances(TokenDataConfig(units="units.km32", sources=(
        {**srcs[0], "vocab": str(v1)}, {**srcs[1], "vocab": str(v1)})))
    assert [len(x) for x in per] == [6, 4] and vocab == 32


def test_token_trainer_with_sources_resumes_exactly(tmp_path: Path) -> None:
    from speechtok.trainers.token import run_recipe

    a = write_synthetic_shards(tmp_path / "a", num_cuts=30)
    b = write_synthetic_shards(tmp_path / "b", num_cuts=12, seed=1)
    recipe = yaml.safe_load((ROOT / "recipes" / "token_tiny.yaml").read_text())
    recipe["data"].pop("shards")
    recipe["data"]["tasks"] = ["unitlm", "asr"]
    recipe["data"]["sources"] = [{"shards": str(a), "weight": 0.7}, {"shards": str(b), "weight": 0.3, "repeat": True}]
    recipe["train"].update(max_steps=6, checkpoint_every=3, eval_every=100, log_every=1)
    recipe["eval"]["asr_utts"] = 0
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert run_recipe(path, tmp_path / "run", {}) == 0
    report = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert report["corpora"] == [str(a), str(b)] and report["mix_weights"] == [0.7, 0.3]
    ref = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    # a second run stopped at step 3 and resumed gives the same losses
    assert run_recipe(path, tmp_path / "half", {"train.max_steps": 3}) == 0
    assert run_recipe(path, tmp_path / "half", {}) == 0
    got = [json.loads(x) for x in (tmp_path / "half" / "metrics.jsonl").read_text().splitlines()]
    loss = {x["step"]: x["loss"] for x in ref if "loss" in x}
    loss2 = {x["step"]: x["loss"] for x in got if "loss" in x}
    assert loss2 == pytest.approx(loss, rel=1e-6)


def test_latent_trainer_with_sources(tmp_path: Path) -> None:
    from speechtok.trainers.latent import run_recipe as run_latent

    a = write_synthetic_shards(tmp_path / "a", feats_dim=16, num_cuts=30)
    b = write_synthetic_shards(tmp_path / "b", feats_dim=16, num_cuts=12, seed=1)
    recipe = yaml.safe_load((ROOT / "recipes" / "latent_tiny.yaml").read_text())
    recipe["data"].pop("shards")
    recipe["data"]["sources"] = [{"shards": str(a), "weight": 0.6}, {"shards": str(b), "weight": 0.4, "repeat": True}]
    recipe["stage1"]["max_steps"] = 3
    recipe["train"]["max_steps"] = 3
    recipe["latent"].update(eval_utts=3, max_new_tokens=8)
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert run_latent(path, tmp_path / "run", {}) == 0
    report = json.loads((tmp_path / "run" / "eval.json").read_text())
    split_a = len(load_source_utterances(TokenDataConfig(units="units.km32", sources=({"shards": str(a)},)))[0][0])
    assert report["train_utts"] + report["dev_utts"] == split_a + 12  # both corpora, one split each
