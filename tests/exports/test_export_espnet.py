"""`export --to espnet`: the directory checked against the rules of ESPnet-SpeechLM's own code.

The rules (ESPnet is not installed here; each line parsed the way its loader parses it):
- espnet/espnet egs2/TEMPLATE/asr1/pyscripts/utils/make_speechlm_json.py @ b05ee6dd774d48c7fc03fb7e5f2d0415080df070:
  data.json keys task, vocabularies, data_files ("path,modality,type", template order), num_examples, examples.
- espnet2/speechlm/definitions.py @ 06aa4b4823cf4e8d23984daaa32b092399e4412c: SPEECHLM_TASKS templates
  (asr = (wav.scp, codec, kaldi_ark), (text, text_bpe, text); ssl_asr = (wav.scp, ssl, kaldi_ark), (text, ...)).
- espnet2/train/dataset.py ESPnetMultiTaskDataset (PyPI espnet 202412, 202506 and 202511 alike): triplet split
  on ",", loader keyed by the path's base name, task prefix removed with str.lstrip(task + "_").
- espnet2/speechlm/tokenizer/codec_tokenizer.py CodecTokenizer.forward (espnet 202506): codes frame-major,
  codebook q shifted by q * codebook_size, int32; kaldiio 2.18.1 matio.write_array / read_int32vector: the
  Kaldi binary int32 vector layout.
- egs2/TEMPLATE/asr1/pyscripts/utils/make_token_list_speechlm.py @ 615f31a5210cdda023d67e47f1402d009a915a6d:
  a vocabulary file belongs to the modality its stem starts with, one token per line.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from speechtok.cli import main
from speechtok.errors import ConfigError, InputError
from speechtok.exports.espnet import TASKS, check_id, kaldi_int32_vector
from speechtok.exports.formats import export_output
from speechtok.shards.testing import CODES, UNITS

Output = tuple[Path, dict[str, Any]]


def read_int32_vector(ark: Path, offset: int) -> np.ndarray:
    """Kaldi binary int32 vector at `offset`: ``\\0B \\4 <n> (\\4 <v>)*n``, little-endian."""
    with open(ark, "rb") as f:
        f.seek(offset)
        assert f.read(3) == b"\0B\4"
        (n,) = struct.unpack("<i", f.read(4))
        out = []
        for _ in range(n):
            assert f.read(1) == b"\4"
            out.append(struct.unpack("<i", f.read(4))[0])
    return np.asarray(out, dtype=np.int32)


def two_columns(path: Path) -> list[tuple[str, str]]:
    """ESPnet's read_2columns_text: ``<id> <content>`` per line."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, content = line.partition(" ")
        assert key and content, line
        rows.append((key, content))
    return rows


def check_schema(dest: Path, task: str, ids: list[str]) -> dict[str, Any]:
    """Checks data.json and every file it lists against ESPnet's rules; returns data.json."""
    desc = json.loads((dest / "data.json").read_text())
    assert list(desc)[:5] == ["task", "vocabularies", "data_files", "num_examples", "examples"]
    assert desc["task"] == task and desc["num_examples"] == len(ids) and desc["examples"] == ids
    triplets = [t.split(",") for t in desc["data_files"]]
    assert all(len(t) == 3 for t in triplets)  # no comma in any path
    # ESPnet keys each file by its base name and looks the template's entries up by name, in order
    assert [(Path(p).name, m, t) for p, m, t in triplets] == list(TASKS[task])
    for path, _, typ in triplets:
        assert Path(path).is_absolute() and Path(path).parent == dest
        lines = two_columns(Path(path))
        assert [k for k, _ in lines] == ids, path  # same ids, same order
        # the task prefix ESPnet adds survives its str.lstrip(task + "_")
        assert all((task + "_" + k).lstrip(task + "_") == k for k, _ in lines)
        if typ == "kaldi_ark":
            for _, content in lines:
                ark, _, offset = content.rpartition(":")
                assert Path(ark).is_file() and offset.isdigit()
    for vocab in desc["vocabularies"]:
        assert Path(vocab).is_file() and Path(vocab).stem.split("_")[0] in {m for _, m, _ in triplets}
        toks = Path(vocab).read_text().splitlines()
        assert len(set(toks)) == len(toks)
    return desc


def scp_tokens(dest: Path) -> dict[str, np.ndarray]:
    out = {}
    for key, content in two_columns(dest / "wav.scp"):
        ark, _, offset = content.rpartition(":")
        out[key] = read_int32_vector(Path(ark), int(offset))
    return out


def test_asr_codec_tokens_text_and_raw_audio(tmp_path: Path, audio_output: Output) -> None:
    out, data = audio_output
    dest = tmp_path / "espnet"
    assert main(["export", str(out), "--to", "espnet", "-o", str(dest)]) == 0  # default task: asr
    cuts = data["rows"]["cuts"]
    ids = [r["id"] for r in cuts]
    desc = check_schema(dest, "asr", ids)
    codes = {r["id"]: r["codes"] for r in data["rows"][CODES.group]}
    k = int(CODES.vocab_size or 0)
    for cid, tokens in scp_tokens(dest).items():
        assert tokens.dtype == np.int32
        shifted = codes[cid] + np.arange(4) * k  # (T, Q), codebook q shifted by q * K
        assert np.array_equal(tokens, shifted.reshape(-1))
        assert tokens.max() < 4 * k
    assert [t for _, t in two_columns(dest / "text")] == [" ".join(str(c["text"]).split()) for c in cuts]
    assert [s for _, s in two_columns(dest / "utt2spk")] == [c["speaker"] or c["id"] for c in cuts]
    (vocab,) = desc["vocabularies"]
    assert Path(vocab).name == "codec_token_list" and len(Path(vocab).read_text().splitlines()) == 4 * k
    assert desc["speechtok"]["group"] == CODES.group
    raw = two_columns(dest / "raw" / "wav.scp")
    assert [key for key, _ in raw] == ids
    for cid, path in raw:
        np.testing.assert_allclose(sf.read(path, dtype="float32")[0], data["waves"][cid], atol=1e-4)
    assert Path(raw[2][1]).parent == dest / "audio"  # the segment was cut to its own file
    assert (dest / "raw" / "text").read_text() == (dest / "text").read_text()


def test_ssl_asr_units(tmp_path: Path, audio_output: Output) -> None:
    out, data = audio_output
    dest = tmp_path / "espnet"
    assert main(["export", str(out), "--to", "espnet", "--task", "ssl_asr", "-o", str(dest)]) == 0
    desc = check_schema(dest, "ssl_asr", [r["id"] for r in data["rows"]["cuts"]])
    units = {r["id"]: r["units"] for r in data["rows"][UNITS.group]}
    for cid, tokens in scp_tokens(dest).items():
        assert np.array_equal(tokens, units[cid].astype(np.int32))
    (vocab,) = desc["vocabularies"]
    assert Path(vocab).name == "ssl_token_list" and len(Path(vocab).read_text().splitlines()) == UNITS.vocab_size


@pytest.mark.parametrize("task", ["tts", "bpe_tts", "audiolm", "textlm"])
def test_other_templates_follow_their_entries(tmp_path: Path, audio_output: Output, task: str) -> None:
    out, data = audio_output
    dest = tmp_path / task
    export_output(out, "espnet", dest, task=task)
    check_schema(dest, task, [r["id"] for r in data["rows"]["cuts"]])
    assert (dest / "wav.ark").exists() == (task != "textlm")


def test_kaldi_vector_layout() -> None:
    b = kaldi_int32_vector(np.array([7, -1, 70000]))
    assert b == b"\0B\4" + struct.pack("<i", 3) + b"".join(b"\4" + struct.pack("<i", v) for v in (7, -1, 70000))


def test_refusals(tmp_path: Path, audio_output: Output) -> None:
    out, _ = audio_output
    with pytest.raises(ConfigError, match="ssl_asr"):  # unknown task: the valid list
        export_output(out, "espnet", tmp_path / "a", task="st")
    with pytest.raises(ConfigError, match="only applies to --to espnet"):
        export_output(out, "nemo", tmp_path / "b", task="asr")
    with pytest.raises(ConfigError, match="exactly one codes group"):  # asr without a codes group
        export_output(out, "espnet", tmp_path / "c", groups=[UNITS.group])
    with pytest.raises(ConfigError, match="','"):
        export_output(out, "espnet", tmp_path / "d,e")
    for bad in ("rec-1", "_x", "a b"):  # 'asr_rec-1'.lstrip('asr_') == 'ec-1': ESPnet would lose the id
        with pytest.raises(InputError, match="lstrip|whitespace"):
            check_id(bad, "asr", "x")
    check_id("cut-0000", "asr", "x")
    assert not any((tmp_path / n).exists() for n in ("a", "b", "c", "d,e"))  # nothing left behind
