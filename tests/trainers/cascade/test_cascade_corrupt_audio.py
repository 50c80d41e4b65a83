"""Audio whose header opens but whose body cannot be decoded (truncated FLAC frames, garbage after
a valid header, NaN samples) leaves out only its utterance in the cascade's n-best decode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechtok.errors import InputError
from speechtok.models.nbest import Utterance, load_audio
from speechtok.models.whisper_nbest import WhisperNBest, WhisperNBestConfig
from speechtok.trainers.cascade.data import read_kaldi_dir
from speechtok.trainers.cascade.run import _left_out_note

ROOT = Path("/tmp/robust3")


def _corrupt_files() -> dict[str, Path]:
    """Three files `sf.info` opens (the check `speechtok transcribe` makes up front) over a corrupt body."""
    ROOT.mkdir(parents=True, exist_ok=True)
    wave = (0.3 * np.sin(np.arange(16000) / 10)).astype(np.float32)  # (S,) float32, 1 s at 16 kHz
    good = ROOT / "good.flac"
    sf.write(good, wave, 16000)
    body = good.read_bytes()
    out = {"truncated": ROOT / "truncated.flac", "garbage": ROOT / "garbage.flac", "nan": ROOT / "nan.wav"}
    out["truncated"].write_bytes(body[: len(body) // 3])  # header says 16000 frames; the frames end early
    noise = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    out["garbage"].write_bytes(body[:200] + noise)  # a valid header, then bytes that are no FLAC frame
    sf.write(out["nan"], wave, 16000, subtype="FLOAT")
    raw = bytearray(out["nan"].read_bytes())
    raw[100:200] = b"\xff" * 100  # float samples 0xffffffff: NaN
    out["nan"].write_bytes(bytes(raw))
    for p in out.values():
        assert sf.info(str(p)).frames > 0  # every header opens
    return out


def test_load_audio_refuses_each_corrupt_body() -> None:
    for path in _corrupt_files().values():
        with pytest.raises(InputError, match=str(path)):
            load_audio(path)  # nan: was a wave of NaN samples handed to the decoder


def test_whisper_nbest_leaves_out_only_the_corrupt_utterances(whisper_ct2_dir: Path,
                                                              speechocean_dir: Path) -> None:
    real = next(u for u in read_kaldi_dir(speechocean_dir) if u.id == "000010035")
    bad = [Utterance(id=kind, path=p, text="x", speaker="s") for kind, p in _corrupt_files().items()]
    dec = WhisperNBest(WhisperNBestConfig(model_dir=whisper_ct2_dir, beam_size=2, num_hypotheses=2,
                                          batch_size=2, threads=1))
    with pytest.raises(InputError, match="truncated.flac"):  # no left_out dict: strict, as before
        list(dec.decode_utterances([bad[0], real]))
    left_out: dict[str, str] = {}
    lists = list(dec.decode_utterances([bad[0], real, bad[1], bad[2]], left_out=left_out))
    assert [nb.id for nb in lists] == [real.id] and len(lists[0].hyps) == 2
    assert sorted(left_out) == ["garbage", "nan", "truncated"]
    assert "non-finite" in left_out["nan"] and "cannot be read" in left_out["truncated"]


def test_the_wer_table_notes_what_it_leaves_out() -> None:
    assert _left_out_note({"train": 0, "dev": 0, "test": 0}) == ""
    note = _left_out_note({"train": 0, "dev": 2, "test": 1})
    assert "dev 2, test 1" in note and "left_out" in note
