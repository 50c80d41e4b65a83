"""Three-family comparison on speechocean762-train80 (`recipes/compare_speechocean.yaml`).

Runs `speechtok compare` into `runs/compare_speechocean/`, copies the report (markdown, JSON,
charts, each family's eval/results file) to `bench/results/compare_speechocean/`, and
records `compare.text.test_wer`, `compare.latent.test_wer`, `compare.token.test_wer` (the headline:
the held-out *test* speakers only, never tuned on; or the recipe's separate `data.test` set),
`compare.{family}.dev_wer` (dev speakers: the cascade tunes lambda and its system there) and
`compare.{family}.wer` (dev + test), plus per family `.cer`, `.tokens_per_s`, `.train_s`,
`.params`, and the whole run's `compare.wall_s` and `compare.cpu_s`. With both backbones, issue 16's
goals: `compare.{latent,token}.whisper_decoder.rel_test_wer_vs_scratch` (the family's best
whisper_decoder variant — latent: prefix or `latent_memory`, the cross-attention variant — against
its scratch run) and `compare.latent.whisper_decoder.test_wer_vs_text`. Every family's scored ids are
checked against the held-out speakers by `speechtok compare` itself (a mismatch fails that family).
A failed family records no figure; its error is in the report and the note.
Overrides: `BENCH_COMPARE_STEPS` (budget.steps), `BENCH_COMPARE_OUT` (report directory),
`BENCH_COMPARE_BACKBONE` (``backbone``, e.g. ``[scratch, whisper_decoder]``: the whisper_decoder
runs record `compare.<family>.whisper_decoder.*`, e.g. `compare.latent.whisper_decoder.test_wer`),
`BENCH_COMPARE_WORKERS` (family runs at once, each with the recipe's 1 thread),
`BENCH_COMPARE_FAMILY_SET` (JSON ``{"text": {"ger.enabled": false}}``: dotted overrides added to a
family's own, e.g. to fit a loaded machine's time; values keep their JSON types).
Every override is kept in the figures' settings.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import shutil
from pathlib import Path

from bench.common import peak_rss_mb, record, set_threads, timed

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    set_threads(1)
    from speechtok.compare import compare
    from speechtok.compare.recipe import load_compare_recipe
    from speechtok.config import parse_value

    # the families' run directories (checkpoints, shards of n-best lists) stay out of the repo;
    # the report (markdown, JSON, PNGs) is copied to bench/results/compare_speechocean
    out = Path(os.environ.get("BENCH_COMPARE_OUT", ROOT / "runs" / "compare_speechocean"))
    keep = ROOT / "bench" / "results" / "compare_speechocean"
    sets: dict[str, object] = ({"budget.steps": int(os.environ["BENCH_COMPARE_STEPS"])}
                               if os.environ.get("BENCH_COMPARE_STEPS") else {})
    if os.environ.get("BENCH_COMPARE_BACKBONE"):
        sets["backbone"] = parse_value(os.environ["BENCH_COMPARE_BACKBONE"])
    if os.environ.get("BENCH_COMPARE_WORKERS"):
        sets["workers"] = int(os.environ["BENCH_COMPARE_WORKERS"])
    recipe_path = ROOT / "recipes" / "compare_speechocean.yaml"
    recipe, _ = load_compare_recipe(recipe_path, sets)
    family_sets = json.loads(os.environ.get("BENCH_COMPARE_FAMILY_SET") or "{}")
    unknown = sorted(set(family_sets) - {f.name for f in recipe.families})
    if unknown:
        raise SystemExit(f"BENCH_COMPARE_FAMILY_SET: no family {unknown[0]!r}")
    recipe = dataclasses.replace(recipe, families=tuple(
        dataclasses.replace(f, sets={**f.sets, **family_sets.get(f.name, {})})
        for f in recipe.families))
    with timed() as t:
        result = compare(recipe, out, recipe_path=str(recipe_path.relative_to(ROOT)))
    figures: dict[str, float] = {"compare.wall_s": t.wall_s, "compare.cpu_s": t.cpu_s}
    notes: dict[str, str] = {}
    for f in result["families"]:
        backbone = (f"Llama {recipe.llm['hidden_size']}x{recipe.llm['num_layers']} from scratch"
                    if f.get("backbone", "scratch") == "scratch" else
                    "Whisper tiny.en decoder, zero-shot" if f.get("trainable_params") == 0 else
                    "Whisper tiny.en decoder fine-tuned")
        budget = f"{recipe.steps} steps, {backbone}, CPU"
        # `backbone: whisper_decoder` runs are `compare.<family>.whisper_decoder.*`
        name = f["family"] if f.get("backbone", "scratch") == "scratch" else f"{f['family']}.{f['backbone']}"
        if f["status"] != "ok":
            notes[f"compare.{name}.wer"] = f"{f['status']}: {f.get('error') or f.get('reason', '')}"[:200]
            continue
        figures[f"compare.{name}.wer"] = float(f["wer"])
        for key in ("test_wer", "dev_wer"):
            if f.get(key) is not None:
                figures[f"compare.{name}.{key}"] = float(f[key])
        if f.get("cer") is not None:
            figures[f"compare.{name}.cer"] = float(f["cer"])
        for key, fig in (("llm_tokens_per_s", "tokens_per_s"), ("train_s", "train_s"), ("total_params", "params")):
            if f.get(key) is not None:
                figures[f"compare.{name}.{fig}"] = float(f[key])
        notes[f"compare.{name}.wer"] = f"dev + test; {f.get('system')}; {f['eval_utts']} held-out utts; {budget}"
        notes[f"compare.{name}.test_wer"] = (f"test only ({f.get('test_utts')} utts of "
                                             f"{len(result['meta']['heldout']['test_speakers'])} test speakers"
                                             + (f", separate set {recipe.data.test}" if recipe.data.test else "")
                                             + f"); {f.get('system')}; {budget}")
    for key in ("text.wer", "text.test_wer", "text.whisper_decoder.wer", "text.whisper_decoder.test_wer"):
        if f"compare.{key}" in notes:
            notes[f"compare.{key}"] += "; Whisper tiny.en n-best (pretrained) + LM"
    peers: dict[str, list[str]] = {}
    figures.update(backbone_figures(figures, notes, peers))
    kids_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    notes["compare.wall_s"] = (f"whole comparison, {recipe.workers} family run(s) at once, shared 2-core machine; "
                               f"peak RSS {peak_rss_mb():.0f} MB (largest worker process {kids_mb:.0f} MB)")
    settings = {"recipe": str(recipe_path.relative_to(ROOT)), "steps": recipe.steps,
                "backbone": os.environ.get("BENCH_COMPARE_BACKBONE", "recipe default"),
                "family_sets": family_sets, "threads": recipe.threads, "workers": recipe.workers}
    record(figures, notes, settings=settings, peers=peers)
    shutil.rmtree(keep, ignore_errors=True)
    keep.mkdir(parents=True)
    for f in [*out.glob("compare.*"), *out.glob("*.png"), *out.glob("*/eval.json"), *out.glob("*/results.md"),
              *out.glob("*/wer_vs_lambda.png")]:
        dest = keep / f.relative_to(out)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dest)
    print((out / "compare.md").read_text())


def backbone_figures(figures: dict[str, float], notes: dict[str, str],
                     peers: dict[str, list[str]] | None = None) -> dict[str, float]:
    """Issue 16's goals from the test WERs: per family, the relative change of its best whisper_decoder
    variant (latent: prefix or cross-attention memory) against its scratch run, and the latent family's
    ratio to the cascade with the same backbone. `notes` gains which variant each one used, `peers` the
    two figures each one compares."""
    peers = {} if peers is None else peers
    out: dict[str, float] = {}
    variants = {"latent": ("latent", "latent_memory"), "token": ("token",)}
    for fam, names in variants.items():
        scratch = figures.get(f"compare.{fam}.test_wer")
        got = {n: figures[f"compare.{n}.whisper_decoder.test_wer"] for n in names
               if f"compare.{n}.whisper_decoder.test_wer" in figures}
        if not got:
            continue
        best = min(got, key=lambda n: got[n])
        if scratch:
            key = f"compare.{fam}.whisper_decoder.rel_test_wer_vs_scratch"
            out[key] = got[best] / scratch - 1.0
            peers[key] = [f"compare.{best}.whisper_decoder.test_wer", f"compare.{fam}.test_wer"]
            notes[key] = (f"test WER {got[best]:.3f} ({best}, whisper_decoder) / {scratch:.3f} ({fam}, scratch) - 1; "
                          "negative = lower with the pretrained decoder")
        text = figures.get("compare.text.whisper_decoder.test_wer")
        if fam == "latent" and text:
            key = "compare.latent.whisper_decoder.test_wer_vs_text"
            out[key] = got[best] / text
            peers[key] = [f"compare.{best}.whisper_decoder.test_wer", "compare.text.whisper_decoder.test_wer"]
            notes[key] = f"test WER {got[best]:.3f} ({best}) / {text:.3f} (text), both backbone whisper_decoder"
    return out


if __name__ == "__main__":
    main()
