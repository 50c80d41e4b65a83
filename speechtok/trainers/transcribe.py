"""`speechtok transcribe RUN DATA -o OUT`: a trained latent, token or cascade run decodes new data.

The family is read from RUN's files (latent: ``stage2/`` + ``recipe.json`` with an encoder;
token: ``model/`` + ``vocab_spec.json``; cascade: ``results.json`` + ``recipe.resolved.json``).

- latent / token: DATA is a shard directory with the group the run reads (``feats.*`` /
  ``units.*``), made by the same stages (`speechtok.trainers.run_data.check_run_data` names the
  missing stages, or the differing feature field / k-means checksum).
- cascade: DATA is a shard directory (its cuts must be whole recordings) or a Kaldi directory;
  the audio is decoded to n-best lists as in the run, then the run's chosen system (the one with
  the lower dev WER: LM rescoring at the tuned lambda, or GER) picks the hypothesis.

Writes ``OUT/hyps.jsonl`` (`speechtok.trainers.hyps` records) and ``OUT/transcribe.json``
(family, data, utterances, and WER/CER with the project's one normaliser where references exist;
``left_out``: id -> reason of each utterance not decoded, e.g. a cascade's missing or unreadable audio, a latent
row past the LM's learned positions).
``split="dev"`` (or ``"train"``/``"test"``) keeps only the utterances of the run's own split of
those speakers, so a run's dev WER can be reproduced from its own shards.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import soundfile as sf

from speechtok.errors import ConfigError, InputError
from speechtok.models.nbest import Utterance
from speechtok.shards.index import write_json_atomic
from speechtok.shards.reader import ShardDataset
from speechtok.trainers.cascade.data import read_kaldi_dir
from speechtok.trainers.cascade.hyporadise import hp_record
from speechtok.trainers.cascade.rescoring import RescoreConfig, chosen_system, rescore
from speechtok.trainers.hyps import hyp_record, score_hyps, write_hyps
from speechtok.trainers.run_data import check_run_data
from speechtok.trainers.token.recipe import SplitConfig

FAMILIES = ("latent", "token", "cascade")


def run_family(run: Path) -> str:
    """Which family trained `run` (from its files)."""
    if (run / "stage2").is_dir() and (run / "recipe.json").is_file():
        return "latent"
    if (run / "vocab_spec.json").is_file() and (run / "model").is_dir():
        return "token"
    if (run / "results.json").is_file() and (run / "recipe.resolved.json").is_file():
        return "cascade"
    raise InputError(str(run), "is not a finished latent (stage2/), token (model/ + vocab_spec.json) or "
                     "cascade (results.json) run")


def _speaker_split(recipe_split: dict[str, Any] | None, split: str | None) -> Any:
    if split is None:
        return None

    if split not in ("train", "dev"):
        raise ConfigError("split", split, "must be 'train' or 'dev' for a latent or token run")
    cfg = SplitConfig(**(recipe_split or {}))
    want_train = split == "train"
    return lambda speaker: cfg.is_train(str(speaker)) == want_train


def _latent(run: Path, data: Path, split: str | None, device: str,
            left_out: dict[str, str]) -> list[dict[str, Any]]:
    # lazy: brings torch, which only this path needs
    from speechtok.trainers.latent.decode import load_latent_run, shard_rows

    rec = json.loads((run / "recipe.json").read_text())
    feats, target = rec["data"]["feats"], rec["data"].get("target", "text")
    check_run_data(data, [feats], trained_on=rec["data"]["shards"])
    keep_spk = _speaker_split(rec["data"].get("split"), split)
    # a row without a speaker has no split (the trainers leave it out): never its id as speaker
    keep = None if keep_spk is None else (lambda row: bool(row.get("speaker")) and keep_spk(str(row["speaker"])))
    rows = shard_rows(data, feats, target, keep=keep)
    dim = ShardDataset(data, groups=(feats,)).meta(feats).dim
    if dim is None:
        raise InputError(f"{data}:{feats}", "records no feature dim in its metadata")
    return load_latent_run(run, int(dim), device=device).decode_rows(rows, left_out)  # past the LM's positions


def _token(run: Path, data: Path, split: str | None, device: str) -> list[dict[str, Any]]:
    # lazy: brings torch, faiss, which only this path needs (`speechtok --help` imports this module)
    from speechtok.trainers.token.decode import load_token_run, shard_utterances

    loaded = load_token_run(run, device=device)
    units = loaded.units_group
    check_run_data(data, [units], trained_on=loaded.shards)
    keep_spk = _speaker_split(loaded.recipe["data"].get("split"), split)
    utts = shard_utterances(data, units, keep=None if keep_spk is None else (lambda u: keep_spk(u.speaker)))
    return loaded.decode_utts(utts)


def cascade_utterances(data: Path) -> list[Any]:
    """Cascade `Utterance`s of a Kaldi directory, or of a shard directory whose cuts are whole
    single-source recordings (the cascade's n-best decoder reads whole files)."""
    if (data / "wav.scp").is_file():
        return read_kaldi_dir(data)

    if not (data / "index.json").is_file() and not (data / "index.d").is_dir():
        raise InputError(str(data), "is neither a Kaldi directory (wav.scp) nor a shard directory (index.json)")
    out = []
    for row in ShardDataset(data, groups=("cuts",), columns=["cut", "text", "speaker", "start", "duration"]):
        cut = row.get("cut")
        cut = json.loads(cut) if isinstance(cut, str) else (cut or {})
        rec = cut.get("recording") or {}
        sources = rec.get("sources") or []
        if len(sources) != 1 or sources[0].get("type") != "file":
            raise InputError(f"{data}:{row['id']}", "the cascade decodes whole audio files; this cut's recording "
                             f"is not one file ({sources!r}); pass a Kaldi directory instead")
        if (float(row.get("start") or 0.0) > 1e-3
                or abs(float(row["duration"]) - float(rec.get("duration", 0.0))) > 1e-2):
            raise InputError(f"{data}:{row['id']}", "the cascade decodes whole recordings; this cut is a segment "
                             f"({row.get('start')} s + {row['duration']} s); pass a Kaldi directory instead")
        out.append(Utterance(id=str(row["id"]), path=Path(sources[0]["source"]), text=row.get("text") or None,
                             speaker=str(row.get("speaker") or "")))  # "" = unknown, never invented
    return out


def readable_audio(utts: list[Any]) -> tuple[list[Any], dict[str, str]]:
    """(the `utts` whose audio file opens, id -> reason for the others): a missing file or one
    libsndfile does not recognise is left out and reported, not the end of the whole decode."""
    ok, bad = [], {}
    for u in utts:
        if not Path(u.path).is_file():
            bad[u.id] = f"{u.path}: missing (no such file)"
            continue
        try:
            sf.info(str(u.path))
        except (RuntimeError, OSError) as exc:  # sf.LibsndfileError is a RuntimeError
            bad[u.id] = f"{u.path}: cannot be read ({exc})"
            continue
        ok.append(u)
    return ok, bad


def _cascade(run: Path, data: Path, split: str | None, device: str,
             left_out: dict[str, str]) -> list[dict[str, Any]]:
    # lazy: brings torch, lhotse, which only this path needs (`speechtok --help` imports this module)
    from speechtok.manifests.splits import split_of
    from speechtok.trainers.cascade.decode import decode_nbest
    from speechtok.trainers.cascade.recipe import read_run_recipe

    recipe = read_run_recipe(run / "recipe.resolved.json")  # also a run from before the config layer
    res = json.loads((run / "results.json").read_text())
    best = chosen_system(res["results"]["dev"], str(run / "results.json"))
    utts = cascade_utterances(data)
    if split is not None:
        if split not in ("train", "dev", "test"):
            raise ConfigError("split", split, "must be 'train', 'dev' or 'test' for a cascade run")
        utts = [u for u in utts if split_of(u.speaker, recipe.data.split_ratios, recipe.data.split_seed) == split]
    utts, bad = readable_audio(utts)
    left_out.update(bad)
    if not utts:
        raise InputError(str(data), f"no utterance has readable audio ({len(bad)} left out; first: "
                         f"{next(iter(bad.values()), 'none')})")
    lists, _ = decode_nbest(utts, recipe, left_out)  # a header that opens over a corrupt body
    k = recipe.nbest.num_hypotheses
    if best == "ger":
        # lazy: brings torch, which only this path needs (`speechtok --help` imports this module)
        from speechtok.trainers.cascade.ger import GERModel

        recs = [hp_record(nb, num_hypotheses=k) for nb in lists]
        hyps = GERModel(run / "ger", prompt=recipe.ger.prompt, device=device).correct(
            recs, batch_size=recipe.ger.infer_batch_size, max_new_tokens=recipe.ger.max_new_tokens)
    else:
        # lazy: brings torch, which only this path needs (`speechtok --help` imports this module)
        from speechtok.trainers.cascade.lm_scoring import HFCausalLMScorer, score_nbests

        lam = float(res["tuned_lambda"]["lm"])
        r = recipe.rescoring
        lm_dir = recipe.lm_model_dir or run / "text_lm"
        scores = score_nbests(HFCausalLMScorer(lm_dir, device=device, batch_size=r.lm_batch_size), lists)
        hyps = rescore(lists, scores, lam, RescoreConfig(am_norm=r.am_norm, lm_norm=r.lm_norm, lambdas=(lam,)))
    by_id = {u.id: u for u in utts}
    return [hyp_record(nb.id, h, by_id[nb.id].text if nb.id in by_id else nb.reference,
                       {"am_1best": float(nb.hyps[0].am_score) if nb.hyps else 0.0, "n_hyps": len(nb.hyps)})
            for nb, h in zip(lists, hyps, strict=True)]


def transcribe(run_dir: str | Path, data: str | Path, out_dir: str | Path, *, split: str | None = None,
               device: str = "cpu") -> dict[str, Any]:
    """Decodes `data` with the run `run_dir` (see module docstring); returns the summary written
    to ``OUT/transcribe.json`` (``family``, ``utts``, ``wer``, ``cer``, ``wall_s``...)."""
    run, data_p, out = Path(run_dir), Path(data), Path(out_dir)
    family = run_family(run)
    from speechtok.trainers.loop import resolve_device  # lazy: brings torch (`speechtok --help` imports this)

    device = str(resolve_device(device, field="--device"))
    t0 = time.perf_counter()
    left_out: dict[str, str] = {}  # id -> why it was not decoded (cascade: unreadable audio; latent: too long)
    if family == "cascade":
        records = _cascade(run, data_p, split, device, left_out)
    elif family == "latent":
        records = _latent(run, data_p, split, device, left_out)
    else:
        records = _token(run, data_p, split, device)
    wall = time.perf_counter() - t0
    write_hyps(out / "hyps.jsonl", records)
    summary = {"run": str(run), "family": family, "data": str(data_p), "split": split,
               "normaliser": "speechtok.trainers.metrics.normalize_text", "wall_s": wall,
               **score_hyps(records), "decoded": len(records), "left_out": left_out}

    write_json_atomic(out / "transcribe.json", summary)
    return summary
