"""Utterances for the cascade: a Kaldi-style directory, and deterministic speaker splits.

Reads ``wav.scp``, ``text`` and ``utt2spk`` through the ingest's Kaldi source (one Kaldi reader
for the whole toolkit) and the audio with `soundfile` (`speechtok.models.nbest.load_audio`), so the
cascade needs no manifest step.

Splits are by speaker, with the toolkit's one rule (`speechtok.manifests.splits.split_of`):
every utterance of a speaker lands in one split, the same one the shard-reading families use.
"""

from __future__ import annotations

from pathlib import Path

from speechtok.errors import InputError
from speechtok.manifests.items import SourceItem
from speechtok.manifests.sources.kaldi import iter_kaldi
from speechtok.models.nbest import Utterance

__all__ = ["read_kaldi_dir", "split_name_source"]


def read_kaldi_dir(data_dir: Path) -> list[Utterance]:
    """Reads `data_dir` through the ingest's Kaldi source (`speechtok.manifests.sources.kaldi`),
    so a directory reads here exactly as `speechtok ingest --kind kaldi` reads it (ids split
    from the rest of a line on any whitespace, tabs included; relative paths resolved alike).

    Returns the utterances in ``wav.scp`` order; `text` is None where ``text`` has no entry.

    Raises:
        InputError: an entry the ingest would quarantine as unusable (piped command, archive
            offset, line without a path, segment of an unknown recording), a ``segments``
            file with sub-file segments (ingest the directory and use its cuts instead), or
            utterances without a speaker (the speaker-disjoint split needs ``utt2spk``; a
            speaker is never invented).
    """
    data_dir = Path(data_dir)
    if not (data_dir / "wav.scp").exists():
        raise InputError(str(data_dir), "has no wav.scp; pass a Kaldi-style data directory")
    utts: list[Utterance] = []
    no_speaker: list[str] = []
    for item in iter_kaldi(data_dir):
        if not isinstance(item, SourceItem):
            if item.reason == "no_audio_for_transcript":
                continue  # a transcript without audio: nothing to decode
            raise InputError(item.origin or str(data_dir), f"{item.reason}: {item.detail} (id {item.id!r}); "
                             "fix the entry, or ingest the directory (`speechtok ingest --kind kaldi`), "
                             "which quarantines it")
        for seg in item.segments:
            if seg.start != 0.0 or seg.duration is not None:
                raise InputError(f"{data_dir / 'segments'}:{seg.id}", "the cascade reads whole files; "
                                 "ingest the directory with `speechtok ingest --kind kaldi` for segments")
            if seg.speaker is None:
                no_speaker.append(seg.id)
            utts.append(Utterance(id=seg.id, path=item.path, text=seg.text, speaker=seg.speaker or ""))
    if no_speaker:
        raise InputError(str(data_dir / "utt2spk"), f"has no speaker for {len(no_speaker)} of {len(utts)} "
                         f"utterances (e.g. {no_speaker[:3]}); the speaker-disjoint split needs one per "
                         "utterance: add them to utt2spk")
    return utts


def split_name_source() -> str:
    """Which split rule the cascade uses (for run reports)."""
    return "speechtok.manifests.splits.split_of"
