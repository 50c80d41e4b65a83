"""The comparison proves its split: held-out speakers listed once, scored ids checked, test-only WER.

`heldout_split` derives, from the shards' cuts, which speakers are held out (the latent and token
trainers' rule: `split_of` on the speaker, the first `train_share` of the hash range trains) and
how the cascade divides them into dev (tunes) and test (scored only): the same hash with ratios
``(t, (1-t)/2, (1-t)/2)``. Each family's scored utterances are then read from its own files
(per-utterance hypotheses) and checked to belong to those speakers; a family whose scored ids
fall outside them fails the comparison. With a separate test set (`data.test`) every family's
test WER is on that set, and its scored ids must be exactly that set's.

`data_description` describes the data actually used (from the shards' ingest report and cuts),
so a comparison run on another corpus is not titled after the recipe's default one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speechtok.errors import SpeechtokError
from speechtok.shards.reader import ShardDataset
from speechtok.trainers.cascade.data import read_kaldi_dir
from speechtok.trainers.hyps import score_hyps


class SplitProofError(SpeechtokError):
    """A family scored utterances outside the comparison's held-out speakers (or test set)."""


@dataclass
class HeldOut:
    """The comparison's split of the shards' speakers.

    Attributes:
        speaker_of: utterance id -> speaker, for every cut of the shards.
        part_of: speaker -> "train" | "dev" | "test".
        test_ids: ids of the separate test set (`data.test`), or None.
    """

    speaker_of: dict[str, str]
    part_of: dict[str, str]
    rule: str
    test_ids: set[str] | None = None
    test_source: str | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def speakers(self, part: str) -> list[str]:
        return sorted(s for s, p in self.part_of.items() if p == part)

    def ids(self, part: str) -> set[str]:
        return {i for i, s in self.speaker_of.items() if self.part_of.get(s) == part}

    def summary(self) -> dict[str, Any]:
        """JSON-able: the held-out speakers once, with utterance counts (what the report lists)."""
        out: dict[str, Any] = {"rule": self.rule, "train_speakers": len(self.speakers("train")),
                               "train_utts": len(self.ids("train"))}
        for part in ("dev", "test"):
            out[f"{part}_speakers"] = self.speakers(part)
            out[f"{part}_utts"] = len(self.ids(part))
        if self.test_ids is not None:
            out["separate_test_set"] = {"source": self.test_source, "utts": len(self.test_ids)}
        return out


def _rows(shards: Path) -> Iterable[Mapping[str, Any]]:
    return ShardDataset(shards, groups=("cuts",), columns=["speaker", "duration"])


def test_set_ids(test: Path) -> set[str]:
    """Utterance ids of a separate test set: a shard directory's cuts or a Kaldi dir's ``text``/``wav.scp``."""
    if (test / "wav.scp").is_file():
        return {u.id for u in read_kaldi_dir(test)}
    return {str(r["id"]) for r in _rows(test)}


def heldout_split(shards: Path, train_share: float, seed: int, test: Path | None = None) -> HeldOut:
    """The split of `shards` (see module docstring); `test` a separate test set or None."""
    # lazy: brings torch, lhotse, which only this path needs (`speechtok --help` imports this module)
    from speechtok.manifests.splits import split_of

    rest = (1.0 - train_share) / 2
    ratios = (train_share, rest, 1.0 - train_share - rest)
    speaker_of: dict[str, str] = {}
    part_of: dict[str, str] = {}
    seconds = 0.0
    for r in _rows(shards):
        spk = str(r.get("speaker") or r["id"])
        speaker_of[str(r["id"])] = spk
        seconds += float(r["duration"])
        if spk not in part_of:
            part_of[spk] = split_of(spk, ratios=ratios, seed=seed)
    rule = (f"speechtok.manifests.splits.split_of(speaker, ratios={[round(x, 6) for x in ratios]}, seed={seed}): "
            "train trains every family; dev tunes (the cascade's lambda and system); test is scored only")
    held = HeldOut(speaker_of=speaker_of, part_of=part_of, rule=rule, seconds=seconds)
    if test is not None:
        held.test_ids = test_set_ids(test)
        held.test_source = str(test)
    return held


def check_ids(held: HeldOut, family: str, ids: Iterable[str], part: str) -> int:
    """Raises `SplitProofError` unless every id in `ids` belongs to `part` ("dev", "test", "heldout"
    = dev or test, or "test_set" = the separate test set); returns how many ids were checked."""
    ids = [str(i) for i in ids]
    if part == "test_set":
        if held.test_ids is None:
            raise SplitProofError(f"{family}: scored a separate test set, but the comparison has none")
        bad = [i for i in ids if i not in held.test_ids]
        where = f"the separate test set {held.test_source}"
    else:
        parts = ("dev", "test") if part == "heldout" else (part,)
        bad = [i for i in ids if held.part_of.get(held.speaker_of.get(i, "\0"), "unknown") not in parts]
        where = f"the held-out {'/'.join(parts)} speakers"
    if bad:
        raise SplitProofError(
            f"{family}: {len(bad)} of {len(ids)} scored utterances are not of {where}, e.g. "
            f"{bad[:3]} (speakers {[held.speaker_of.get(i, 'not in the shards') for i in bad[:3]]}); "
            "the families did not use the same data: check data.shards, data.kaldi_dir and data.split")
    return len(ids)


def split_scores(held: HeldOut, family: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Dev and test WER/CER of per-utterance `records` (`speechtok.trainers.hyps`), after checking
    that every id is held out. Returns ``{dev_wer, dev_cer, dev_utts, test_wer, test_cer, test_utts}``."""

    check_ids(held, family, [r["id"] for r in records], "heldout")
    out: dict[str, Any] = {}
    for part in ("dev", "test"):
        mine = [r for r in records if held.part_of[held.speaker_of[str(r["id"])]] == part]
        s = score_hyps(mine)
        out.update({f"{part}_wer": s["wer"], f"{part}_cer": s["cer"], f"{part}_utts": s["utts"]})
    return out


def data_description(shards: Path, held: HeldOut, kaldi_dir: Path | None) -> dict[str, str]:
    """``{"corpus", "title", "line"}`` describing the data the comparison actually used."""
    source = None
    report = shards / "report.json"
    if report.is_file():
        try:
            source = (json.loads(report.read_text()).get("ingest") or {}).get("source")
        except json.JSONDecodeError:  # only for a report line
            source = None
    corpus = Path(str(source)).name if source else (kaldi_dir.name if kaldi_dir else shards.name)
    n_spk = len(held.part_of)
    line = (f"{len(held.speaker_of)} utterances, {n_spk} speakers, {held.seconds / 3600:.2f} h of `{source or shards}` "
            f"(shards `{shards}`" + (f"; the cascade reads the same utterances from `{kaldi_dir}`" if kaldi_dir else "")
            + ")")
    if held.test_ids is not None:
        line += f"; separate test set `{held.test_source}` ({len(held.test_ids)} utterances, scored only)"
    return {"corpus": corpus, "title": f"{corpus}, {n_spk} speakers, {held.seconds / 3600:.2f} h", "line": line}
