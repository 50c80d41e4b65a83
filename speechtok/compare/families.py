"""One adapter per integration family (`Family`, registered in `FAMILIES` by name): run its trainer
recipe with the comparison's shared settings as overrides, then read that run's own result files into
one flat record, and prove that it scored only held-out utterances.

Every family gets the same backbone (`llm:` sizes and seed), the same optimiser-step budget and
the same speaker-disjoint split (`speechtok.manifests.splits.split_of` on the speaker: the first
`train_share` of the hash range is train, the rest is held out). The cascade splits its held-out
speakers further into dev (tunes lambda, picks rescoring vs GER) and test; `wer` is over dev + test
together, `test_wer` over the test speakers only for every family (`Family.prove_split`, which also
checks every scored id against the held-out speakers; `speechtok.compare.split_proof`).
"""

from __future__ import annotations

import json
import shutil
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np
import soundfile as sf
from safetensors import safe_open

from speechtok import hub
from speechtok.atomic import atomic_open
from speechtok.compare.recipe import BACKBONES, CompareRecipe, FamilySpec
from speechtok.compare.split_proof import HeldOut, SplitProofError, check_ids, split_scores
from speechtok.errors import BugError, ConfigError, InputError, SpeechtokError
from speechtok.shards.index import ShardIndex
from speechtok.shards.reader import ShardDataset
from speechtok.trainers import cascade, latent, token
from speechtok.trainers.cascade.data import read_kaldi_dir
from speechtok.trainers.cascade.rescoring import chosen_system
from speechtok.trainers.hyps import read_hyps, score_hyps
from speechtok.trainers.metrics import cer, normalize_text, wer
from speechtok.trainers.token.recipe import SplitConfig

#: Published parameter count of Whisper tiny.en (the cascade's frozen ASR front end).
WHISPER_TINY_PARAMS = 39_000_000
ALL = 1_000_000  # "every held-out utterance" for the trainers' eval caps


def _num_params(path: Path) -> int | None:
    """Sum of tensor sizes in a safetensors file (header only, no tensor is loaded)."""
    if not path.is_file():
        return None

    total = 0
    with safe_open(str(path), framework="np") as f:
        for k in f.keys():  # noqa: SIM118  (safe_open has no __iter__)
            total += int(np.prod(f.get_slice(k).get_shape()))
    return total


def _latest_weights(run: Path) -> Path:
    ckpts = sorted((run / "checkpoints").glob("step_*"))
    return ckpts[-1] / "model.safetensors" if ckpts else run / "missing.safetensors"


def heldout_rows(recipe: CompareRecipe) -> tuple[list[str], np.ndarray]:
    """Held-out utterances of the shards, in shard order, as the latent and token trainers split them.

    Returns ids and durations in seconds (float64 (N,)).
    """

    split = SplitConfig(train=recipe.data.train_share, seed=recipe.data.split_seed)
    ds = ShardDataset(recipe.data.shards, groups=("cuts",), columns=["speaker", "duration"])
    ids, durs = [], []
    for row in ds:  # rows without a speaker are left out of training and evaluation alike
        if row.get("speaker") and not split.is_train(str(row["speaker"])):
            ids.append(str(row["id"]))
            durs.append(float(row["duration"]))
    return ids, np.asarray(durs, np.float64)


def _eval_cap(recipe: CompareRecipe) -> int:
    return recipe.data.eval_utts or ALL


#: What `backbone: whisper_decoder` changes in the latent and token recipes: the LLM, and learning
#: rates for fine-tuning a pretrained decoder (the scratch rates, 2e-3 to 1e-2, would wreck it).
_WHISPER_DECODER_TRAINER_SETS: Mapping[str, Any] = MappingProxyType({
    "llm.kind": "whisper_decoder", "train.lr": 3.0e-4, "train.min_lr": 3.0e-5})


class Family(Protocol):
    """One integration family as the comparison drives it: the overrides of its trainer recipe,
    its trainer, the flat record of a finished run and the proof of that run's split."""

    #: Name in the comparison recipe's ``families:`` and in the report.
    name: str
    #: What `backbone: whisper_decoder` changes in the family's trainer recipe.
    whisper_decoder_sets: Mapping[str, Any]
    #: True when a run of another backbone reuses what the scratch run wrote (`prepare`), so it
    #: has to wait for it.
    after_scratch: bool
    #: The backbones the family can run with; under another one its record is ``skipped``.
    backbones: tuple[str, ...]

    def overrides(self, recipe: CompareRecipe) -> dict[str, Any]:
        """Overrides of the family's trainer recipe: corpus, split, backbone sizes, seed, step budget."""
        ...

    def prepare(self, out_dir: Path, run_dir: Path, backbone: str, sets: dict[str, Any]) -> None:
        """Last changes to `sets` before the run of `backbone` into `run_dir` (`out_dir` holds the others)."""
        ...

    def run(self, recipe_path: Path, run_dir: Path, sets: dict[str, Any]) -> int:
        """Trains and evaluates the family's recipe with `sets` into `run_dir`; returns the exit code."""
        ...

    def read(self, run_dir: Path, recipe: CompareRecipe, wall_s: float) -> dict[str, Any]:
        """Flat record of a finished run (`wall_s`: the run's wall time)."""
        ...

    def prove_split(self, run_dir: Path, held: HeldOut) -> dict[str, Any]:
        """Test-only (and dev) WER of a finished run, after checking that every utterance it scored is
        of the held-out speakers (or of the separate test set). Raises `SplitProofError`."""
        ...


# ---------------------------------------------------------------- text (cascade)

def _words(text: str) -> int:
    return len(normalize_text(text).split())


def _reuse_nbest(prior: Path, run: Path, sets: dict[str, Any]) -> None:
    """Points the cascade's n-best cache at a copy of the scratch run's lists (same decoder, same
    utterances: the backbone only changes the LM), so a second backbone does not decode again."""
    if not prior.is_file():
        return
    cache = run / "nbest_cache.jsonl"
    with open(prior, "rb") as src, atomic_open(cache, "wb") as dst:
        shutil.copyfileobj(src, dst)
    sets["nbest.cache"] = str(cache)


def _scored_rows(run: Path, split: str) -> list[dict[str, Any]]:
    """The cascade's scored utterances of `split` ("dev" | "test"), one ``{id, reference, best}`` each
    (normalised reference and 1-best, HyPoradise's ``output`` and ``input1``): ``ger_<split>.jsonl``
    when GER ran (it adds ``ger``), else ``hyporadise/<split>.json``, which every cascade run writes."""
    ger = run / f"ger_{split}.jsonl"
    if ger.is_file():
        return [json.loads(line) for line in ger.open(encoding="utf-8") if line.strip()]
    hp = run / "hyporadise" / f"{split}.json"
    if not hp.is_file():
        raise InputError(str(run), f"has neither ger_{split}.jsonl nor hyporadise/{split}.json: not a finished "
                         "cascade run")
    return [{"id": r["id"], "reference": r["output"], "best": r["input1"]}
            for r in json.loads(hp.read_text(encoding="utf-8"))]


class TextFamily:
    """The cascade (`speechtok.trainers.cascade`): Whisper (or PocketSphinx) n-best lists, LLM
    rescoring and GER, on a Kaldi-style directory split by speaker like the shards."""

    name = "text"
    whisper_decoder_sets: Mapping[str, Any] = MappingProxyType({"text_lm.llm.kind": "whisper_decoder",
                                                                "ger.train.lr": 1.0e-4, "ger.train.min_lr": 1.0e-5})
    after_scratch = True
    backbones: tuple[str, ...] = BACKBONES

    def overrides(self, recipe: CompareRecipe) -> dict[str, Any]:
        """Overrides of the cascade recipe: corpus, split, backbone sizes, seed and step budget."""
        d, llm, t = recipe.data, recipe.llm, recipe.data.train_share
        if d.kaldi_dir is None:
            raise ConfigError("data.kaldi_dir", None,
                              "must be set: the text family decodes audio from a Kaldi-style directory")
        rest = (1.0 - t) / 2
        sets: dict[str, Any] = {
            "data.kaldi_dir": str(d.kaldi_dir),
            "data.split_ratios": [t, rest, 1.0 - t - rest],
            "data.split_seed": d.split_seed,
            "seed": llm["seed"],
            "text_lm.train.max_steps": recipe.steps,
            "ger.train.max_steps": recipe.steps,
        }
        for k in ("hidden_size", "num_layers", "num_heads", "intermediate_size"):
            sets[f"text_lm.llm.{k}"] = llm[k]
        if d.eval_utts:
            sets["data.max_utts_per_split"] = max(1, d.eval_utts // 2)
        if d.test is not None:
            sets["data.test"] = str(d.test)
        return sets

    def prepare(self, out_dir: Path, run_dir: Path, backbone: str, sets: dict[str, Any]) -> None:
        """A backbone other than scratch reuses the scratch run's n-best lists (unless `nbest.cache` is set)."""
        if backbone != "scratch" and "nbest.cache" not in sets:
            _reuse_nbest(out_dir / self.name / "nbest.jsonl", run_dir, sets)

    def run(self, recipe_path: Path, run_dir: Path, sets: dict[str, Any]) -> int:
        """`speechtok train cascade`."""
        return cascade.run_recipe(recipe_path, run_dir, sets)

    def read(self, run: Path, recipe: CompareRecipe, wall_s: float = 0.0) -> dict[str, Any]:
        """Flat record of a cascade run: WER over dev + test of the system chosen on dev (`wall_s` unused:
        the cascade times its own steps)."""
        res = json.loads((run / "results.json").read_text())
        resolved = run / "recipe.resolved.json"
        decoder = (json.loads(resolved.read_text()).get("nbest") or {}).get("decoder", "whisper") \
            if resolved.is_file() else "whisper"
        asr = ("Whisper tiny.en", "39 M params, trained elsewhere on 680 k h") if decoder == "whisper" else \
            ("PocketSphinx en-us", "CMU's continuous HMM + 3-gram LM, trained elsewhere")
        dev, test = res["results"]["dev"], res["results"]["test"]
        best = chosen_system(dev, str(run / "results.json"))
        dev_rows = _scored_rows(run, "dev")
        rows = dev_rows + _scored_rows(run, "test")
        ids = {r["id"] for r in rows}
        refs = [r["reference"] for r in rows]
        words = {s: sum(_words(r["reference"]) for r in rows[:n]) for s, n in (("dev", len(dev_rows)),
                                                                             ("all", len(rows)))}
        w_dev, w_test = words["dev"], words["all"] - words["dev"]
        record: dict[str, Any] = {"system": best, "wer_by_system": {
            s: (dev[s] * w_dev + test[s] * w_test) / max(w_dev + w_test, 1)
            for s in ("1best", "oracle", "rescored_lm", "rescored_ngram", "ger") if s in dev and s in test}}
        record["wer"] = record["wer_by_system"][best]
        if best == "ger":
            record["cer"] = cer(refs, [r["ger"] for r in rows]).rate
        else:
            record["cer"] = None  # rescored hypotheses are not written per utterance by the cascade
        record["wer_1best_check"] = wer(refs, [r["best"] for r in rows]).rate
        # tokens the LLM reads: every n-best hypothesis, through the run's text-LM tokenizer
        # lazy: transformers takes seconds to import
        from transformers import AutoTokenizer

        tok = hub.from_pretrained(AutoTokenizer, run / "text_lm")
        n_tokens = 0
        decoded: list[str] = []
        for line in (run / "nbest.jsonl").open():
            nb = json.loads(line)
            decoded.append(nb["id"])
            if nb["id"] in ids:
                n_tokens += sum(len(tok(h["text"], add_special_tokens=False)["input_ids"]) for h in nb["hyps"])

        utts = {u.id: u for u in read_kaldi_dir(recipe.data.kaldi_dir)} if recipe.data.kaldi_dir else {}
        dur = {i: float(sf.info(str(utts[i].path)).duration) for i in decoded if i in utts}
        seconds = float(sum(dur.get(i, 0.0) for i in ids))
        tim = res.get("timings", {})
        lm_report = res.get("text_lm", {})
        lm_params = int(lm_report.get("num_parameters") or 0)
        # a pretrained LM (Whisper's decoder, `lm_model_dir`) rescoring as it is trains nothing; GER fine-tunes it
        trained = "pretrained" not in lm_report or "ger" in dev
        decode_s = float(tim.get("decode_wall_s", 0.0))
        # decoding covered every split: charge the held-out share of it
        decode_eval_s = decode_s * seconds / max(sum(dur.values()), 1e-9)
        if best == "ger":
            post_s = float(tim.get("ger_infer_dev_wall_s", 0.0)) + float(tim.get("ger_infer_test_wall_s", 0.0))
        else:
            post_s = float(tim.get("rescoring_wall_s", 0.0))
        cached = decode_s < 0.05 * seconds
        record.update({
            "eval_utts": len(rows), "eval_audio_s": seconds,
            "llm_tokens_per_s": n_tokens / seconds if seconds else None,
            "trainable_params": lm_params if trained else 0,
            "total_params": lm_params + (WHISPER_TINY_PARAMS if decoder == "whisper" else 0),
            "train_s": float(tim.get("text_lm_wall_s", 0.0)) + float(tim.get("ger_train_wall_s", 0.0)),
            "rtf": (decode_eval_s + post_s) / seconds if seconds else None,
            "rtf_note": (f"{asr[0]} n-best decoding (held-out share of {decode_s:.1f} s wall"
                         + (", n-best lists came from the cache: decoding NOT measured" if cached else "")
                         + f") + {best} ({post_s:.1f} s wall; rescoring time covers the LM and the 3-gram)"),
            "can_generate_speech": False, "speech_intelligibility": "not applicable (text out only)",
            "data_needed": "audio + transcripts of the train speakers (text LM, GER targets); a pretrained "
                           f"ASR ({asr[0]}, {asr[1]}) for n-best lists",
            "params_note": "trainable = text LM (GER fine-tunes the same LM)" + (
                "; total adds Whisper tiny.en (published 39 M)" if decoder == "whisper" else
                "; total excludes the PocketSphinx models (HMM + 3-gram, not a neural parameter count)"),
        })
        return record

    def prove_split(self, run: Path, held: HeldOut) -> dict[str, Any]:
        """The cascade's own dev/test speakers must be the comparison's; its scored ids are checked too."""
        name = self.name
        out: dict[str, Any] = {}
        res = json.loads((run / "results.json").read_text())
        dev, test = res["results"]["dev"], res["results"]["test"]
        best = chosen_system(dev, str(run / "results.json"))
        splits = json.loads((run / "splits.json").read_text()).get("speakers", {})
        for part in ("train", "dev", "test"):
            bad = sorted(set(splits.get(part, [])) - set(held.speakers(part)))
            if bad:
                raise SplitProofError(f"text: the cascade's {part} speakers {bad[:3]} are not the comparison's "
                                      f"{part} speakers; it read other data (data.kaldi_dir) or another split")
        checked = 0
        for part in ("dev", "test"):
            checked += check_ids(held, name, [r["id"] for r in _scored_rows(run, part)], part)
        out.update({"dev_wer": dev[best], "test_wer": test[best], "test_utts": res["utterances"]["test"],
                    "dev_utts": res["utterances"]["dev"], "scored_ids_checked": checked})
        if "test_set" in res:
            recs = read_hyps(run / "test_hyps.jsonl")
            check_ids(held, name, [r["id"] for r in recs], "test_set")
            out.update({"heldout_test_wer": out["test_wer"], "test_wer": res["test_set"]["wer"],
                        "test_cer": res["test_set"]["cer"], "test_utts": len(recs)})
        return out


# ---------------------------------------------------------------- latent and token

class _ShardFamily:
    """What the latent and token families share: a trainer on the shards (input group: the comparison's
    ``data.<data_field>``, eval cap: `eval_key`) that writes its scored held-out utterances to
    ``dev_hyps.jsonl``."""

    name: str
    data_field: str
    eval_key: str
    #: The family's `run_recipe` (`speechtok train <name>`).
    trainer: Callable[[Path, Path, Mapping[str, Any]], int]
    whisper_decoder_sets: Mapping[str, Any] = _WHISPER_DECODER_TRAINER_SETS
    after_scratch = False
    backbones: tuple[str, ...] = BACKBONES

    def overrides(self, recipe: CompareRecipe) -> dict[str, Any]:
        """Overrides of the trainer recipe: shards, the input group, split, backbone sizes, seed, step
        budget and eval cap."""
        d, llm = recipe.data, recipe.llm
        sets: dict[str, Any] = {"data.shards": str(d.shards), f"data.{self.data_field}": getattr(d, self.data_field),
                                "data.frame_rate": float(d.frame_rate),
                                "data.split.train": d.train_share, "data.split.seed": d.split_seed,
                                "train.seed": llm["seed"], "train.max_steps": recipe.steps,
                                self.eval_key: _eval_cap(recipe)}
        for k in ("hidden_size", "num_layers", "num_heads", "intermediate_size"):
            sets[f"llm.{k}"] = llm[k]
        if d.test is not None:
            sets["data.test"] = str(d.test)
        return sets

    def prepare(self, out_dir: Path, run_dir: Path, backbone: str, sets: dict[str, Any]) -> None:
        """Nothing: each run stands alone."""

    def run(self, recipe_path: Path, run_dir: Path, sets: dict[str, Any]) -> int:
        """`speechtok train <name>`."""
        return self.trainer(recipe_path, run_dir, sets)

    def scored(self, run: Path, recipe: CompareRecipe) -> tuple[dict[str, Any], list[str], float]:
        """The run's `eval.json`, the ids it scored (the first held-out utterances up to the eval cap)
        and their audio in seconds."""
        ids, durs = heldout_rows(recipe)
        n = min(len(durs), _eval_cap(recipe))
        return json.loads((run / "eval.json").read_text()), ids[:n], float(durs[:n].sum())

    def prove_split(self, run: Path, held: HeldOut) -> dict[str, Any]:
        """Scores ``dev_hyps.jsonl`` by part (and ``test_hyps.jsonl``, the separate test set) after checking its ids."""
        name = self.name
        out: dict[str, Any] = {}
        records = read_hyps(run / "dev_hyps.jsonl")
        out.update(split_scores(held, name, records))
        out["scored_ids_checked"] = len(records)
        if (run / "test_hyps.jsonl").is_file() and held.test_ids is not None:
            recs = read_hyps(run / "test_hyps.jsonl")
            check_ids(held, name, [r["id"] for r in recs], "test_set")
            s = score_hyps(recs)
            out.update({"heldout_test_wer": out["test_wer"], "test_wer": s["wer"], "test_cer": s["cer"],
                        "test_utts": s["utts"]})
        return out


class LatentFamily(_ShardFamily):
    """Encoder + adapter + LLM (`speechtok.trainers.latent`) on a features group of the shards."""

    name = "latent"
    data_field = "feats"
    eval_key = "latent.eval_utts"
    trainer = staticmethod(latent.run_recipe)

    def read(self, run: Path, recipe: CompareRecipe, wall_s: float) -> dict[str, Any]:
        """Flat record of a latent run (its `eval.json` plus parameter counts from the checkpoint)."""
        ev, ids, seconds = self.scored(run, recipe)
        n = len(ids)
        train_s = float(ev.get("stage1_wall_s", 0.0)) + float(ev.get("stage2_wall_s", 0.0))
        rec = json.loads((run / "recipe.json").read_text())
        return {
            "system": _latent_system(rec, ev), "wer": ev["wer"], "cer": ev["cer"],
            "ctc_cer": ev.get("ctc.cer"), "eval_utts": n, "eval_audio_s": seconds,
            "llm_tokens_per_s": ev.get("adapter_tokens_per_s"),
            "trainable_params": ev.get("trainable_params"),
            "total_params": _num_params(_latest_weights(run / "stage2")),
            "train_s": train_s, "stage1_s": ev.get("stage1_wall_s"),
            "rtf": max(wall_s - train_s, 0.0) / seconds if seconds else None,
            "rtf_note": "upper bound: run wall time minus training, over the held-out audio (includes data loading "
                        "and the encoder's CTC check)",
            "can_generate_speech": False, "speech_intelligibility": "not applicable (text out only)",
            **_latent_texts(rec),
        }


class LatentMemoryFamily(LatentFamily):
    """The latent family's second variant: the adapter's outputs are the cross-attention memory of
    Whisper's decoder (``latent.speech_into: memory``), not a prefix of its input sequence. Only the
    whisper_decoder backbone has cross-attention, so under scratch the record is ``skipped``."""

    name = "latent_memory"
    backbones: tuple[str, ...] = ("whisper_decoder",)

    def overrides(self, recipe: CompareRecipe) -> dict[str, Any]:
        """The latent family's overrides, with the speech into cross-attention."""
        return {**super().overrides(recipe), "latent.speech_into": "memory"}


def _latent_system(rec: Mapping[str, Any], ev: Mapping[str, Any]) -> str:
    """The latent system in words (`rec`: the run's ``recipe.json``): adapter kind, and where its outputs go."""
    into = rec.get("latent", {}).get("speech_into", "prefix")
    where = "LLM input prefix" if into == "prefix" else "decoder cross-attention memory"
    return f"adapter {ev.get('adapter', {}).get('kind', '?')} -> {where}"


def _source_of(recipe: CompareRecipe, group: str) -> str:
    """What made a features group, in words (from its shard metadata)."""

    try:
        meta = ShardDataset(recipe.data.shards, groups=(group,)).meta(group)
    except SpeechtokError:  # only for a report line
        return group
    if meta.stage == "whisper":
        return (f"{group} (Whisper encoder states of {Path(str(meta.config.get('model', '?'))).name}, "
                f"pretrained, frozen)")
    if meta.stage == "ssl":
        return f"{group} (SSL layer {meta.config.get('layer')} of {Path(str(meta.config.get('model', '?'))).name})"
    return f"{group} ({meta.stage})"


def _latent_texts(rec: Mapping[str, Any]) -> dict[str, str]:
    """What a latent run needed and what its parameter counts cover (`rec`: the run's ``recipe.json``)."""
    feats = rec["data"]["feats"]
    if rec["encoder"]["kind"] == "identity":
        return {
            "data_needed": f"precomputed {feats} features of a pretrained encoder + transcripts of the train "
                           "speakers; a linear CTC head on the features is trained here (stage 1, for the CTC "
                           "adapter's segments) before the adapter + LLM",
            "params_note": "trainable = adapter + LLM (CTC head frozen in stage 2); total = CTC head + adapter + LLM, "
                           "without the pretrained encoder that computed the features in the pipeline (Whisper "
                           "tiny.en's encoder: about 8 M)",
        }
    if rec["encoder"]["kind"] == "features":
        return {
            "data_needed": f"precomputed {feats} features of a pretrained encoder + transcripts of the train "
                           "speakers; a projection + CTC head is trained here (stage 1) before the adapter + LLM",
            "params_note": "trainable = adapter + LLM (projection frozen in stage 2); total = projection + CTC head + "
                           "adapter + LLM, without the pretrained encoder that computed the features in the "
                           "pipeline (Whisper tiny.en's encoder: about 8 M)",
        }
    return {
        "data_needed": f"audio features ({feats}) + transcripts of the train speakers; the encoder is trained here "
                       "with CTC (stage 1) before the adapter + LLM",
        "params_note": "trainable = adapter + LLM (encoder frozen in stage 2); total = encoder + adapter + LLM",
    }


class TokenFamily(_ShardFamily):
    """ASR through a unit LM (`speechtok.trainers.token`) on a k-means units group of the shards."""

    name = "token"
    data_field = "units"
    eval_key = "eval.asr_utts"
    trainer = staticmethod(token.run_recipe)

    def read(self, run: Path, recipe: CompareRecipe, wall_s: float) -> dict[str, Any]:
        """Flat record of a token run: ASR WER/CER through the token LM, unit rate after dedup."""
        # lazy: brings faiss, which only this path needs (`speechtok --help` imports this module)
        from speechtok.tokenizers.units import dedup

        ev, ids, seconds = self.scored(run, recipe)
        rec = json.loads((run / "recipe.json").read_text())
        n, want = len(ids), set(ids)
        ds = ShardDataset(recipe.data.shards, groups=("cuts", recipe.data.units), columns=[recipe.data.units])
        units = 0
        for row in ds:
            if str(row["id"]) in want:
                u = np.asarray(row[recipe.data.units])
                units += len(dedup(u)[0]) if rec["data"].get("dedup", True) else len(u)
        train_s = float(ev.get("train_wall_s", 0.0))
        tts = "tts" in rec["data"].get("tasks", [])
        return {
            "system": "ASR through the unit LM", "wer": ev.get("asr.wer"), "cer": ev.get("asr.cer"),
            "eval_utts": n, "eval_audio_s": seconds,
            "llm_tokens_per_s": units / seconds if seconds else None,
            "trainable_params": ev.get("trainable_params"),
            "total_params": _num_params(run / "model" / "model.safetensors"),
            "train_s": train_s,
            "rtf": max(wall_s - train_s, 0.0) / seconds if seconds else None,
            "rtf_note": "upper bound: run wall time minus training, over the held-out audio (includes data loading "
                        "and the dev perplexities)",
            "can_generate_speech": True,
            "speech_intelligibility": _intelligibility(ev, tts),
            "data_needed": f"k-means units {recipe.data.units} of "
                           f"{_source_of(recipe, _units_input(recipe))} (unsupervised; k-means fit on the whole "
                           "corpus) + transcripts of the train speakers for the ASR task",
            "params_note": "full fine-tuning: total = trainable = LLM with the extended (text + units) vocabulary",
        }


def _units_input(recipe: CompareRecipe) -> str:
    """The group the units were computed from: the one whose fingerprint is the units' upstream."""

    try:
        up = ShardDataset(recipe.data.shards, groups=(recipe.data.units,)).meta(recipe.data.units).upstream_fingerprint
        index = ShardIndex.load(recipe.data.shards)
        return next((g for g in index.groups() if index.fingerprint_of(g) == up), "?")
    except SpeechtokError:  # only for a report line
        return "?"


def _intelligibility(ev: dict[str, Any], tts: bool) -> str:
    if "tts.wer" in ev:
        return (f"Whisper tiny.en WER {100 * ev['tts.wer']:.1f}% on {ev.get('tts.utts')} generated utterances "
                f"(vocoded real units: {100 * ev['tts.oracle_wer']:.1f}%, the vocoder's ceiling)")
    if tts:
        return ("not measured in this run: the LM was trained for TTS, but its units need a vocoder "
                "(`eval.tts_utts` scores TTS for units of fbank k-means, see bench_token's token.tts_wer)")
    return ("not measured: the LM can continue units (unit LM) but was not trained for TTS here; "
            "bench_token's token.tts_wer measures TTS through a token LM on fbank units")


# ---------------------------------------------------------------- registry and runner

TEXT, LATENT, LATENT_MEMORY, TOKEN = TextFamily(), LatentFamily(), LatentMemoryFamily(), TokenFamily()
#: Every family by its name in the comparison recipe (`speechtok.compare.recipe.FAMILIES`, same order).
FAMILIES: dict[str, Family] = {f.name: f for f in (TEXT, LATENT, LATENT_MEMORY, TOKEN)}


def backbone_overrides(family: str, backbone: str) -> dict[str, Any]:
    """The trainer overrides of `backbone` ("scratch": none) for `family`."""
    return {} if backbone == "scratch" else dict(FAMILIES[family].whisper_decoder_sets)


def run_family(fam: FamilySpec, recipe: CompareRecipe, out_dir: Path, held: HeldOut | None = None,
               backbone: str = "scratch") -> dict[str, Any]:
    """Runs one family with one backbone into `out_dir/<name>` (scratch) or `out_dir/<name>.<backbone>`;
    returns its record (with `status`, `backbone` and, on failure, `error`).

    With `held` (the comparison's split), the record gains `test_wer` (test speakers only, or the
    separate test set), `dev_wer`, and the scored ids are checked (`Family.prove_split`); a family that
    scored other utterances fails."""
    run = out_dir / (fam.name if backbone == "scratch" else f"{fam.name}.{backbone}")
    base: dict[str, Any] = {"family": fam.name, "backbone": backbone, "recipe": str(fam.recipe), "run_dir": str(run)}
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        family = FAMILIES[fam.name]
        sets = family.overrides(recipe)
        sets.update(fam.sets)
        sets.update(backbone_overrides(fam.name, backbone))
        family.prepare(out_dir, run, backbone, sets)
        base["overrides"] = sets
        code = family.run(fam.recipe, run, sets)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if code != 0:
            raise BugError(f"the {fam.name} trainer returned exit code {code}; it raises on failure, "
                           "so a non-zero code breaks its contract")
        rec = family.read(run, recipe, wall)
        if held is not None:
            rec.update(family.prove_split(run, held))
        return {**base, "status": "ok", "wall_s": wall, "cpu_s": cpu, **rec}
    except Exception as exc:  # a failing family is recorded and the others still run
        return {**base, "status": "failed", "wall_s": time.perf_counter() - t0,
                "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=6)}
