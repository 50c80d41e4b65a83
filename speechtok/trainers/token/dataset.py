"""Token-LM data: utterances from shards -> training sequences -> padded batches.

    shards (cuts + units.X) -> [Utterance(id, speaker, text, units, words)]   speaker-disjoint split
    -> SequenceSet: one item per (utterance, task), built when read      # -> TokenSequence
    -> collate: (input_ids (B, L) int64, labels (B, L) int64 with -100 off the loss, attention (B, L))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechtok.errors import ConfigError, InputError
from speechtok.shards.reader import ShardDataset
from speechtok.tokenizers.units import dedup
from speechtok.tokenizers.vocab import VocabSpec
from speechtok.trainers.data import report_skipped
from speechtok.trainers.mixing import parse_sources, shared_vocab_checksum
from speechtok.trainers.run_data import check_run_data
from speechtok.trainers.token import sequences as sq
from speechtok.trainers.token.recipe import SplitConfig, TokenDataConfig


@dataclass(frozen=True)
class Utterance:
    """One cut: `units` `(T,)` int (frame-level, or deduplicated by the shard stage), its text and
    its word alignment (`[(word, start_s, duration_s)]`, or None)."""

    id: str
    speaker: str
    text: str
    units: np.ndarray
    words: list[sq.Word] | None


def _utterances(ds: Any, units: str, align_key: str, needs_text: bool) -> tuple[list[Utterance], int, int]:
    """(utterances, rows without a speaker, rows without the text the tasks need) of `ds`; such
    rows are left out (a speaker or a text is never invented)."""
    out = []
    no_speaker = no_text = 0
    for row in ds:
        if not row.get("speaker"):
            no_speaker += 1  # the speaker-disjoint split needs one
            continue
        if needs_text and row.get("text") is None:
            no_text += 1  # asr/tts/textlm/interleaved need it
            continue
        words = None
        if row.get(align_key):
            words = [(str(w["word"]), float(w["start"]), float(w["duration"])) for w in row[align_key]]
        out.append(Utterance(id=row["id"], speaker=str(row["speaker"]), text=row.get("text") or "",
                             units=np.asarray(row[units]), words=words))
    return out, no_speaker, no_text


def _read(cfg: TokenDataConfig, shards: str) -> tuple[Any, list[Utterance], int, int]:
    """(dataset, utterances, rows without a speaker, rows without text) of one shard directory
    (`_utterances` over its cuts, `cfg.units` and the word alignment)."""
    groups = ("cuts", cfg.units) + ((cfg.alignment,) if cfg.alignment else ())
    align_key = cfg.alignment or "alignment"
    ds = ShardDataset(shards, groups=groups, columns=["text", "speaker", align_key, cfg.units])
    if not ds.meta(cfg.units).vocab_size:
        raise InputError(f"{shards}:{cfg.units}", "has no vocab_size in its metadata")
    return ds, *_utterances(ds, cfg.units, align_key, needs_text=any(t != "unitlm" for t in cfg.tasks))


def load_utterances(cfg: TokenDataConfig) -> tuple[list[Utterance], int]:
    """All utterances of `cfg.shards` (then of each of `cfg.more_shards`, checked to carry units of
    the same k-means model) and the unit vocabulary size (from the group's metadata)."""

    ds, out, no_speaker, no_text = _read(cfg, cfg.shards)
    quarantined = ds.num_quarantined
    for extra in cfg.more_shards:  # several corpora, one vocabulary: same k-means model (checksum)
        check_run_data(extra, [cfg.units], trained_on=cfg.shards)
        more, got, ns, nt = _read(cfg, extra)
        out += got
        no_speaker, no_text, quarantined = no_speaker + ns, no_text + nt, quarantined + more.num_quarantined
    report_skipped(cfg.shards, quarantined, no_speaker, no_text, len(out))
    return out, int(ds.meta(cfg.units).vocab_size)


def load_source_utterances(cfg: TokenDataConfig) -> tuple[list[list[Utterance]], int]:
    """Utterances of each of `cfg.sources` (a list per source) and the unit vocabulary size.

    Every source must hold `cfg.units` from the same k-means model (checksum) with the same
    vocabulary size as the first one, unless all sources name vocabulary files with the same
    checksum (`SourceSpec.vocab`); then the size is the shared file's (or the largest).

    Raises:
        ConfigError: sources with different vocabularies and no shared vocabulary file.
    """

    specs = parse_sources(cfg.sources)
    shared = shared_vocab_checksum(specs)
    out: list[list[Utterance]] = []
    sizes: list[int] = []
    first: Any = None
    for i, spec in enumerate(specs):
        ds, utts, no_speaker, no_text = _read(cfg, spec.shards)
        meta = ds.meta(cfg.units)
        if first is None:
            first = meta
        elif shared is None and (meta.model_checksum, meta.vocab_size) != (first.model_checksum, first.vocab_size):
            raise ConfigError(
                f"data.sources[{i}].{cfg.units}", f"{meta.model_checksum} ({meta.vocab_size} units)",
                f"must come from the k-means model of data.sources[0] ({first.model_checksum}, "
                f"{first.vocab_size} units), or every source must name the same vocabulary file "
                "(`vocab: PATH/vocab_spec.json`, equal checksums)")
        report_skipped(spec.shards, ds.num_quarantined, no_speaker, no_text, len(utts))
        out.append(utts)
        sizes.append(int(meta.vocab_size))
    vocab = max(sizes)
    if shared is not None:
        name = cfg.units.split(".", 1)[1]
        declared = VocabSpec.load(Path(str(specs[0].vocab))).units.get(name)
        if declared is not None:
            if declared < vocab:
                raise ConfigError(f"data.sources[0].vocab.units.{name}", declared,
                                  f"must be >= {vocab}, the largest unit vocabulary of the sources")
            vocab = int(declared)
    return out, vocab


def split_utterances(utts: Sequence[Utterance], split: SplitConfig) -> tuple[list[Utterance], list[Utterance]]:
    """(train, dev), disjoint by speaker."""
    train = [u for u in utts if split.is_train(u.speaker)]
    dev = [u for u in utts if not split.is_train(u.speaker)]
    if not train or not dev:
        raise InputError("split", f"{len(train)} train and {len(dev)} dev utterances; change split.train or split.seed")
    return train, dev


class SequenceSet:
    """Items `(utterance, task)` of `utts` x `tasks`; `self[i]` builds the `TokenSequence`.

    Interleaved sequences draw their spans from a generator seeded by `(seed, i)`, so an item is
    the same every time it is read (which exact resume needs)."""

    def __init__(self, utts: Sequence[Utterance], tasks: Sequence[str], spec: VocabSpec, cfg: TokenDataConfig,
                 encode_text: Callable[[str], list[int]], *, seed: int = 0) -> None:
        self.utts, self.spec, self.cfg, self.encode, self.seed = list(utts), spec, cfg, encode_text, seed
        self.name = cfg.units.split(".", 1)[1]
        # interleaved only for cuts with a word alignment
        self.index = [(k, t) for k, u in enumerate(self.utts) for t in tasks if t != "interleaved" or u.words]
        if not self.index:
            raise InputError("data.tasks", f"no sequences from {len(self.utts)} utterances and tasks {list(tasks)}")
        self._texts = [np.asarray(encode_text(u.text), dtype=np.int64) for u in self.utts]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> sq.TokenSequence:
        k, task = self.index[int(i)]
        u, text = self.utts[k], self._texts[k]
        d = self.cfg.dedup
        if task == "unitlm":
            return sq.unit_lm_sequence(self.spec, self.name, u.units, dedup=d)
        if task == "asr":
            return sq.asr_sequence(self.spec, self.name, u.units, text, dedup=d)
        if task == "tts":
            return sq.tts_sequence(self.spec, self.name, u.units, text, dedup=d)
        if task == "textlm":
            return sq.text_lm_sequence(self.spec, text)
        seq, _ = sq.interleave_sequence(self.spec, self.name, u.units, self.cfg.frame_rate, u.words or [], self.encode,
                                        speech_ratio=self.cfg.speech_ratio, mean_span_words=self.cfg.mean_span_words,
                                        dedup=d, rng=np.random.default_rng([self.seed, int(i)]))
        return seq

    def lengths(self) -> np.ndarray:
        """`(N,)` int64 sequence lengths (exact, or an upper bound for interleaved sequences)."""
        out = np.empty(len(self.index), dtype=np.int64)
        for i, (k, task) in enumerate(self.index):
            u = self.utts[k]
            n_units = len(dedup(u.units)[0]) if self.cfg.dedup else len(u.units)
            n_text = len(self._texts[k])
            markers = len(u.words or []) if task == "interleaved" else 0  # one per span at most
            out[i] = 4 + markers + {"unitlm": n_units, "textlm": n_text}.get(task, n_units + n_text)
        return out


def collate_sequences(seqs: list[sq.TokenSequence], pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Right-padded batch: `input_ids`, `labels` (-100 off the loss and on padding), `attention_mask`,
    each `(B, L)` int64."""
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), pad_id, dtype=torch.int64)
    labels = torch.full((len(seqs), n), -100, dtype=torch.int64)
    att = torch.zeros((len(seqs), n), dtype=torch.int64)
    for b, s in enumerate(seqs):
        t = torch.as_tensor(s.ids)
        ids[b, : len(s)] = t
        labels[b, : len(s)] = torch.where(torch.as_tensor(s.loss_mask), t, torch.tensor(-100))
        att[b, : len(s)] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": att}
