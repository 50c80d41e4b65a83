"""Sections the latent and token trainer recipes share (the split, the token data and eval), and
`dump_json` for their run files.

A recipe has one mapping per section; each section is a config dataclass whose fields it sets
(unknown keys are errors). `speechtok.config.load_recipe_dict` reads the file and applies
`--set section.field=value` (one YAML value rule and one unknown-key error for every command).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speechtok import atomic
from speechtok.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class SplitConfig:
    """Speaker-disjoint split of one shard directory: speakers whose hash falls in the first
    `train` share train, the rest are dev (`speechtok.manifests.splits.split_of`)."""

    train: float = 0.9
    seed: int = 0

    def validate(self) -> None:
        if not 0.0 < self.train < 1.0:
            raise ConfigError("split.train", self.train, "must be in (0, 1)")

    def is_train(self, speaker: str) -> bool:
        # lazy: brings lhotse, torch, which only this path needs
        from speechtok.manifests.splits import split_of

        return split_of(speaker, (self.train, 1.0 - self.train, 0.0), seed=self.seed) == "train"


@dataclass(frozen=True, kw_only=True)
class TokenDataConfig:
    """Data of the token trainer.

    Attributes:
        shards: shard output directory (`speechtok run` output).
        units: units group, e.g. "units.km100".
        tasks: sequence kinds built from every training utterance: unitlm, asr, tts, textlm,
            interleaved (needs word alignments: the cuts' `alignment` column, or `alignment`).
        alignment: an ``align.*`` group (e.g. from the ``ctc_align`` stage) to read word
            alignments from instead of the cuts' column; None: the cuts' column.
        dedup: deduplicate units (unit LM, ASR, TTS).
        frame_rate: units per second (for interleaving; taken from the shard metadata when set there).
        speech_ratio, mean_span_words: interleaving parameters.
        more_shards: more corpora read together with `shards` into one dataset with one vocabulary:
            each must hold the same units group from the same k-means model (its checksum and vocab
            size are checked), e.g. tokenized with ``kmeans_units`` ``model: SHARDS/models/NAME``.
        test: a separate test shard directory (units from the same k-means model): decoded by ASR
            after training, scored only (``RUN/test_hyps.jsonl``, ``test.wer`` in eval.json).
        sources: weighted corpora mixed batch by batch instead of `shards`/`more_shards`:
            ``[{shards: A, weight: 0.7}, {shards: B, weight: 0.3, repeat: true}]`` (see
            `speechtok.trainers.mixing`); `shards` defaults to the first source's.
    """

    shards: str = ""
    units: str = "units.km100"
    tasks: tuple[str, ...] = ("unitlm", "asr")
    dedup: bool = True
    frame_rate: float = 100.0
    speech_ratio: float = 0.5
    mean_span_words: float = 3.0
    split: dict[str, Any] = field(default_factory=dict)
    alignment: str | None = None
    test: str | None = None
    more_shards: tuple[str, ...] = ()
    sources: tuple[dict[str, Any], ...] = ()

    def validate(self) -> None:
        # lazy: brings torch, which only this path needs (`speechtok --help` imports this module)
        from speechtok.trainers.mixing import parse_sources

        if not self.shards and not self.sources:
            raise ConfigError("data.shards", self.shards, "must name a shard directory (or give data.sources)")
        if self.sources:
            parse_sources(self.sources)
            if self.more_shards:
                raise ConfigError("data.more_shards", list(self.more_shards),
                                  "must be empty with data.sources (list every corpus as a source)")
        if self.alignment is not None and not self.alignment.startswith("align."):
            raise ConfigError("data.alignment", self.alignment, "must be an align group like 'align.ctc'")
        known = ("unitlm", "asr", "tts", "textlm", "interleaved")
        for t in self.tasks:
            if t not in known:
                raise ConfigError("data.tasks", t, f"must be one of {known}")
        if not self.units.startswith("units."):
            raise ConfigError("data.units", self.units, "must be a units group like 'units.km100'")


@dataclass(frozen=True, kw_only=True)
class TokenEvalConfig:
    """Evaluation: perplexities on all dev sequences, ASR on the first `asr_utts` dev utterances,
    TTS on the first `tts_utts` (needs the ``tts`` task and units of an fbank k-means model).

    Attributes:
        asr_utts, max_new_tokens: ASR utterances and their text length limit.
        tts_utts: dev utterances synthesised (0 = no TTS evaluation).
        tts_asr_model: CTranslate2 Whisper directory that transcribes the synthesised audio
            (``${shared}`` and ``${whisper_tiny_en}`` expand as in every recipe).
        tts_feats: the fbank group the units were fitted on (its config gives the STFT geometry).
        tts_top_k, tts_temperature, tts_seed: unit sampling.
    """

    asr_utts: int = 100
    max_new_tokens: int = 200
    tts_utts: int = 0
    tts_asr_model: str = "${whisper_tiny_en}"
    tts_feats: str = "feats.fbank"
    tts_top_k: int = 20
    tts_temperature: float = 1.0
    tts_seed: int = 0

    def validate(self) -> None:
        if self.asr_utts < 0:
            raise ConfigError("eval.asr_utts", self.asr_utts, "must be >= 0")
        if self.tts_utts < 0:
            raise ConfigError("eval.tts_utts", self.tts_utts, "must be >= 0")
        if self.tts_top_k < 1:
            raise ConfigError("eval.tts_top_k", self.tts_top_k, "must be >= 1")
        if self.tts_temperature <= 0:
            raise ConfigError("eval.tts_temperature", self.tts_temperature, "must be > 0")


def dump_json(path: Path, data: Any) -> None:
    """Writes `data` as indented, key-sorted JSON to `path`, atomically."""
    atomic.write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
