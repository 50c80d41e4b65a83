"""`speechtok train cascade RECIPE.yaml -o RUN`: n-best -> text LM -> rescoring -> GER -> WER table.

Steps, each writing into the run directory ``RUN``:

1. utterances of ``data.kaldi_dir``, split by speaker (`speechtok.manifests.splits.split_of`) -> ``splits.json``;
2. n-best lists of every utterance (cached in ``nbest.cache`` when set) -> ``nbest.jsonl``
   and the shard group ``nbest.<decoder>`` (``index.json``, ``shards/``);
3. a small text LM trained on all *train* references (or ``lm_model_dir``) -> ``text_lm/``
   (with the loop's ``metrics.jsonl`` and ``checkpoints/``: a rerun into ``RUN`` resumes);
4. LM scores of dev/test hypotheses; lambda tuned on dev, applied to test (the HF LM, and the
   PocketSphinx 3-gram as a baseline) -> ``rescoring.json``, ``wer_vs_lambda.png``;
5. HyPoradise JSON of train/dev/test -> ``hyporadise/{split}.json``;
6. GER fine-tuned on train (resumable like the text LM), run on dev and test -> ``ger/``,
   ``ger_{dev,test}.jsonl``;
7. WER of 1-best, oracle, rescored, GER on dev and test -> ``results.json``, ``results.md``;
8. with ``data.test`` (a separate Kaldi or shard directory): the dev-chosen system decodes it,
   scored only -> ``test_hyps.jsonl``, ``results.json["test_set"]``.

The same normaliser (`speechtok.trainers.metrics.normalize_text`) scores every system.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechtok import atomic
from speechtok.manifests.splits import SPLITS, split_of
from speechtok.models.nbest import NBestList, Utterance, write_jsonl
from speechtok.shards.writer import delete_group
from speechtok.trainers.cascade.data import read_kaldi_dir, split_name_source
from speechtok.trainers.cascade.decode import decode_nbest
from speechtok.trainers.cascade.ger import GERModel, train_ger
from speechtok.trainers.cascade.hyporadise import PROMPTS, hp_record, write_hyporadise
from speechtok.trainers.cascade.lm_scoring import HFCausalLMScorer, NGramScorer, score_nbests
from speechtok.trainers.cascade.nbest_shards import write_nbest_shards
from speechtok.trainers.cascade.recipe import CascadeRecipe, load_recipe
from speechtok.trainers.cascade.rescoring import RescoreConfig, grid_search, plot_wer_vs_lambda, rescore, wer_curve
from speechtok.trainers.cascade.text_lm import save_whisper_text_lm, train_text_lm
from speechtok.trainers.metrics import normalize_text, oracle_wer, wer
from speechtok.trainers.transcribe import transcribe

log = logging.getLogger(__name__)


def _splits(utts: Sequence[Utterance], recipe: CascadeRecipe) -> dict[str, list[Utterance]]:
    d = recipe.data
    out: dict[str, list[Utterance]] = {s: [] for s in SPLITS}
    unscored = [u.id for u in utts if u.text is None]
    if unscored:  # no reference: cannot be scored; counted, never given an invented ""
        log.warning("cascade: %d utterances without a transcript are left out (e.g. %s)", len(unscored), unscored[:3])
        print(f"speechtok: {len(unscored)} utterances without a transcript left out (e.g. {unscored[:3]})", flush=True)
        utts = [u for u in utts if u.text is not None]
    for u in utts:
        out[split_of(u.speaker, d.split_ratios, d.split_seed)].append(u)
    if d.max_utts_per_split:
        out = {s: v[: d.max_utts_per_split] for s, v in out.items()}
    return out


def _write_shards(out_dir: Path, lists: list[NBestList], recipe: CascadeRecipe) -> None:
    """Also stores the n-best lists as the shard group ``nbest.<decoder>`` of the run dir."""
    n = recipe.nbest
    delete_group(out_dir, f"nbest.{n.decoder}")
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(n).items() if k != "cache"}
    write_nbest_shards(out_dir, lists, name=n.decoder, config=config)


def _lm_texts(recipe: CascadeRecipe, train: Sequence[Utterance]) -> list[str]:
    texts = [normalize_text(u.text) for u in train if u.text]
    for path in recipe.data.extra_text:
        texts += [normalize_text(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [t for t in texts if t]


def _write_json(path: Path, data: Any) -> None:
    """`data` as indented JSON (non-JSON values as their str), atomically."""
    atomic.write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def _refs(lists: Sequence[NBestList]) -> list[str]:
    return [nb.reference or "" for nb in lists]


def _table(results: dict[str, Any]) -> str:
    rows = ["| system | dev WER % | test WER % |", "|---|---|---|"]
    for name in ("1best", "oracle", "rescored_lm", "rescored_ngram", "ger"):
        if name in results["dev"] or name in results["test"]:
            dev = results["dev"].get(name)
            test = results["test"].get(name)
            fmt = lambda x: "-" if x is None else f"{100 * x:.2f}"  # noqa: E731
            rows.append(f"| {name} | {fmt(dev)} | {fmt(test)} |")
    return "\n".join(rows) + "\n"


def _left_out_note(per_split: Mapping[str, int]) -> str:
    """The line under the WER table saying how many utterances of each split it does not cover."""
    if not any(per_split.values()):
        return ""
    counts = ", ".join(f"{s} {n}" for s, n in per_split.items())
    return (f"\nLeft out (audio that cannot be decoded; not in these WERs, reasons in results.json "
            f"`left_out`): {counts}\n")


def run_cascade(recipe: CascadeRecipe, out_dir: Path, raw: dict[str, Any] | None = None) -> dict[str, Any]:
    """Runs the whole cascade (see the module docstring); returns the results dict."""
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    torch.manual_seed(recipe.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_json(out_dir / "recipe.resolved.json", raw or {})
    timings: dict[str, float] = {}

    # 1. utterances and speaker-disjoint splits
    splits = _splits(read_kaldi_dir(recipe.data.kaldi_dir), recipe)
    _write_json(out_dir / "splits.json", {
        "rule": split_name_source(), "ratios": recipe.data.split_ratios, "seed": recipe.data.split_seed,
        "utterances": {s: len(v) for s, v in splits.items()},
        "speakers": {s: sorted({u.speaker for u in v}) for s, v in splits.items()}})
    log.info("splits: %s", {s: len(v) for s, v in splits.items()})

    # 2. n-best lists (the train split's capped by max_train_utts: they only feed GER)
    lm_train = list(splits["train"])  # the text LM learns every train reference
    if recipe.data.max_train_utts:
        splits["train"] = splits["train"][: recipe.data.max_train_utts]
    all_utts = [u for s in SPLITS for u in splits[s]]
    left_out: dict[str, str] = {}  # id -> why it has no n-best list (audio that opens over a corrupt body)
    lists, t = decode_nbest(all_utts, recipe, left_out)
    timings.update(t)
    if left_out:
        print(f"speechtok: left out {len(left_out)} utterances whose audio cannot be decoded (e.g. "
              f"{next(iter(left_out.items()))}); {len(lists)} decoded", flush=True)
    write_jsonl(out_dir / "nbest.jsonl", lists)
    _write_shards(out_dir, lists, recipe)
    by_id = {nb.id: nb for nb in lists}
    nb_split = {s: [by_id[u.id] for u in splits[s] if u.id in by_id] for s in SPLITS}

    # 3. text LM
    t0 = time.perf_counter()
    if recipe.lm_model_dir is not None:
        lm_dir = recipe.lm_model_dir
        lm_report: dict[str, Any] = {"pretrained": str(lm_dir)}
    elif recipe.text_lm.llm.kind == "whisper_decoder":
        lm_dir = out_dir / "text_lm"
        lm_report = save_whisper_text_lm(lm_dir, recipe.text_lm.llm)
    else:
        lm_dir = out_dir / "text_lm"
        tok_extra = [normalize_text(h.text) for nb in nb_split["train"] for h in nb.hyps]
        tok_extra += [p.format(best="", others="") for p in PROMPTS.values()]
        rep = train_text_lm(_lm_texts(recipe, lm_train), lm_dir, recipe.text_lm, tokenizer_texts=tok_extra)
        lm_report = asdict(rep)
    timings["text_lm_wall_s"] = time.perf_counter() - t0

    # 4. rescoring: lambda tuned on dev, applied to test
    r = recipe.rescoring
    steps = int(round(1.0 / r.lambda_step))
    lambdas = tuple(round(min(i * r.lambda_step, 1.0), 6) for i in range(steps + 1))
    cfg = RescoreConfig(am_norm=r.am_norm, lm_norm=r.lm_norm, lambdas=lambdas)
    t0 = time.perf_counter()
    scorers: dict[str, Any] = {"lm": HFCausalLMScorer(lm_dir, device=recipe.device, batch_size=r.lm_batch_size)}
    if r.ngram_baseline:
        scorers["ngram"] = NGramScorer()
    rescoring: dict[str, Any] = {"lambdas": list(lambdas), "am_norm": r.am_norm, "lm_norm": r.lm_norm}
    results: dict[str, Any] = {"dev": {}, "test": {}}
    curves: dict[str, tuple[Sequence[float], Sequence[float]]] = {}
    for name, scorer in scorers.items():
        dev_scores = score_nbests(scorer, nb_split["dev"])
        test_scores = score_nbests(scorer, nb_split["test"])
        search = grid_search(nb_split["dev"], dev_scores, cfg)
        test_curve = [e.rate for e in wer_curve(nb_split["test"], test_scores, cfg)]
        test_hyps = rescore(nb_split["test"], test_scores, search.best_lambda, cfg)
        results["dev"][f"rescored_{name}"] = search.best_wer
        results["test"][f"rescored_{name}"] = wer(_refs(nb_split["test"]), test_hyps).rate
        rescoring[name] = {"best_lambda": search.best_lambda, "dev_wer": list(search.wers), "test_wer": test_curve}
        curves[f"{name} dev"] = (lambdas, search.wers)
        curves[f"{name} test"] = (lambdas, test_curve)
    timings["rescoring_wall_s"] = time.perf_counter() - t0
    _write_json(out_dir / "rescoring.json", rescoring)
    plot_wer_vs_lambda(out_dir / "wer_vs_lambda.png", curves, chosen=rescoring["lm"]["best_lambda"])

    # 1-best and oracle
    for s in ("dev", "test"):
        refs = _refs(nb_split[s])
        results[s]["1best"] = wer(refs, [nb.hyps[0].text if nb.hyps else "" for nb in nb_split[s]]).rate
        results[s]["oracle"] = oracle_wer(refs, [nb.texts() or [""] for nb in nb_split[s]])[0].rate

    # 5. HyPoradise JSON; 6. GER
    k = recipe.nbest.num_hypotheses
    for s in SPLITS:
        write_hyporadise(out_dir / "hyporadise" / f"{s}.json", nb_split[s], num_hypotheses=k)
    ger_report: dict[str, Any] = {}
    if recipe.ger.enabled:
        g = recipe.ger
        t0 = time.perf_counter()
        train_records = [hp_record(nb, num_hypotheses=k) for nb in nb_split["train"]]
        gcfg = replace(g, llm=replace(g.llm, path=g.llm.path or str(lm_dir)))
        ger_report = asdict(train_ger(train_records, out_dir / "ger", gcfg))
        timings["ger_train_wall_s"] = time.perf_counter() - t0
        model = GERModel(out_dir / "ger", prompt=g.prompt, device=str(g.train.torch_device()))
        for s in ("dev", "test"):
            t0 = time.perf_counter()
            recs = [hp_record(nb, num_hypotheses=k) for nb in nb_split[s]]
            preds = model.correct(recs, batch_size=g.infer_batch_size, max_new_tokens=g.max_new_tokens)
            timings[f"ger_infer_{s}_wall_s"] = time.perf_counter() - t0
            results[s]["ger"] = wer(_refs(nb_split[s]), preds).rate
            with atomic.atomic_open(out_dir / f"ger_{s}.jsonl", "w") as f:
                for nb, rec, p in zip(nb_split[s], recs, preds, strict=True):
                    f.write(json.dumps({"id": nb.id, "reference": rec["output"], "best": rec["input1"],
                                        "ger": p}, ensure_ascii=False) + "\n")

    per_split_out = {s: sum(u.id in left_out for u in splits[s]) for s in SPLITS}
    summary = {
        "results": results,
        "tuned_lambda": {n: rescoring[n]["best_lambda"] for n in scorers},
        "utterances": {s: len(nb_split[s]) for s in SPLITS},
        "left_out": left_out,
        "left_out_per_split": per_split_out,
        "nbest": {"decoder": recipe.nbest.decoder, "num_hypotheses": k,
                  "mean_distinct_normalised": float(np.mean([len({normalize_text(t) for t in nb.texts()})
                                                              for nb in lists])) if lists else 0.0},
        "text_lm": lm_report,
        "ger": ger_report,
        "timings": timings,
        "normaliser": "speechtok.trainers.metrics.normalize_text",
    }
    _write_json(out_dir / "results.json", summary)
    atomic.write_text(out_dir / "results.md", f"# cascade results ({recipe.nbest.decoder} {k}-best)\n\n"
                      + _table(results) + f"\nTuned lambda (dev): {summary['tuned_lambda']}\n"
                      + _left_out_note(per_split_out))
    log.info("results:\n%s", _table(results))
    if recipe.data.test is not None:
        summary["test_set"] = score_test_set(out_dir, recipe.data.test, recipe.device)
        _write_json(out_dir / "results.json", summary)
    return summary


def score_test_set(out_dir: Path, test: Path, device: str) -> dict[str, Any]:
    """The finished run decodes the separate test set `test` (a Kaldi or shard directory) with its
    dev-chosen system (`speechtok.trainers.transcribe`); scored only -> ``RUN/test_hyps.jsonl``."""
    res = transcribe(out_dir, test, out_dir / "test_set", device=device)
    atomic.write_bytes(out_dir / "test_hyps.jsonl", (out_dir / "test_set" / "hyps.jsonl").read_bytes())
    return {k: res[k] for k in ("data", "wer", "cer", "utts", "decoded", "wall_s")}


def run_recipe(recipe_path: Path, out_dir: Path, sets: Mapping[str, Any]) -> int:
    """Entry point of ``speechtok train cascade``; returns the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    recipe, raw = load_recipe(recipe_path, sets)
    summary = run_cascade(recipe, out_dir, raw)
    print(_table(summary["results"]) + _left_out_note(dict(summary["left_out_per_split"])))
    print(f"tuned lambda: {summary['tuned_lambda']}; outputs in {out_dir}")
    return 0
