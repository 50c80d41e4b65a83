"""Model stages (ssl, whisper, codec) run by the runner on a tiny corpus with tiny random models.

Checks: written groups (shapes, dtypes, GroupMeta), a rerun skips every shard (fingerprints),
stage output == the library called directly on the same (resampled) cut, k-means over an ssl
group, quarantine of bad cuts, and the model checksum in the fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
import transformers as tf
from test_runner_util import make_corpus

from speechtok.pipeline.recipe import recipe_from_dict
from speechtok.pipeline.runner import RunOptions, run
from speechtok.pipeline.stage import CutItem, Quarantine
from speechtok.pipeline.stage_types import build_stage
from speechtok.shards.reader import ShardDataset

pytestmark = [pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning"),
              pytest.mark.usefixtures("one_torch_thread")]

INLINE = RunOptions(executor="inline", progress=False)
N_CUTS = 5


def _hubert(dst: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    cfg = tf.HubertConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                          intermediate_size=64, conv_dim=(16,) * 7, num_conv_pos_embeddings=16,
                          num_conv_pos_embedding_groups=2, feat_extract_norm="group")
    tf.HubertModel(cfg).save_pretrained(dst)
    return dst


ENC_ARCH = {"n_filters": 4, "dimension": 16, "lstm": 1}


def _encodec(folder: Path) -> Path:
    """A tiny EnCodec 24 kHz saved as the releases are (``name-<sha256[:8]>.th``)."""
    from speechtok.tokenizers.acoustic.encodec_codec import (
        EncodecArch,
        build_encodec_model,
        randomize_codebooks,
    )

    torch.manual_seed(0)
    model = build_encodec_model("24khz", EncodecArch(**ENC_ARCH))  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    audio = torch.from_numpy((0.2 * rng.standard_normal(48_000)).astype(np.float32))[None, None]
    randomize_codebooks(model, audio)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "encodec_24khz.tmp"
    torch.save(model.state_dict(), tmp)
    path = folder / f"encodec_24khz-{hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]}.th"
    tmp.rename(path)
    return path


def _dac(dst: Path) -> Path:
    import dac

    torch.manual_seed(0)
    model = dac.DAC(encoder_dim=4, encoder_rates=[2, 4, 5, 8], decoder_dim=16,
                    decoder_rates=[8, 5, 4, 2], n_codebooks=4, codebook_size=64, codebook_dim=4,
                    sample_rate=16_000)
    model.save(str(dst), package=False)
    return dst


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, tiny_whisper_dir: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {"hubert": _hubert(root / "hubert"), "whisper": tiny_whisper_dir,
            "encodec": _encodec(root / "encodec"), "dac": _dac(root / "dac_16khz.pth")}


def _recipe(corpus: Path, models: dict[str, Path]) -> Any:
    raw = {
        "ingest": {"source": str(corpus), "sample_rate": 16000},
        "shards": {"cuts_per_shard": 3},
        "stages": [
            {"type": "ssl", "name": "hubert", "config": {"model": str(models["hubert"]), "layers": [2]}},
            {"type": "kmeans_units", "name": "km", "input": "feats.hubert",
             "config": {"k": 4, "iterations": 4, "frame_budget": 2000}},
            {"type": "whisper", "name": "whisper",
             "config": {"model": str(models["whisper"]), "backend": "transformers"}},
            {"type": "codec", "name": "enc", "config": {
                "codec": "encodec24k", "checkpoint": str(models["encodec"]), "bandwidth": 3.0,
                "arch": ENC_ARCH}},
            {"type": "codec", "name": "dac", "config": {
                "codec": "dac16k", "checkpoint": str(models["dac"]), "n_codebooks": 3}},
        ],
    }
    return recipe_from_dict(raw)


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory, models: dict[str, Path]) -> tuple[Path, Any]:
    corpus = make_corpus(tmp_path_factory.mktemp("corpus"), n=N_CUTS)
    out = tmp_path_factory.mktemp("run") / "out"
    recipe = _recipe(corpus, models)
    run(recipe, out, INLINE)
    return out, recipe


GROUPS = ("feats.hubert", "units.km", "feats.whisper", "codes.enc", "codes.dac")


def test_groups_shapes_dtypes_and_metadata(output: tuple[Path, Any], models: dict[str, Path]) -> None:
    from speechtok.features.checksum import file_sha256, model_checksum

    out, _ = output
    ds = ShardDataset(out, groups=("cuts", *GROUPS))
    assert len(ds) == N_CUTS
    metas = {g: ds.meta(g) for g in GROUPS}
    h, w, enc, dac_ = (metas[g] for g in ("feats.hubert", "feats.whisper", "codes.enc", "codes.dac"))
    assert (h.kind, h.stage, h.frame_rate, h.dim, h.dtype) == ("feats", "ssl", 50.0, 32, "float16")
    assert h.model_checksum == model_checksum(models["hubert"])
    assert (w.kind, w.stage, w.frame_rate, w.dim, w.dtype) == ("feats", "whisper", 50.0, 32, "float16")
    assert w.model_checksum == model_checksum(models["whisper"])
    assert (enc.kind, enc.frame_rate, enc.num_codebooks, enc.vocab_size) == ("codes", 75.0, 4, 1024)
    assert enc.model_checksum == file_sha256(models["encodec"])
    assert (dac_.frame_rate, dac_.num_codebooks, dac_.vocab_size) == (50.0, 3, 64)
    assert dac_.model_checksum == file_sha256(models["dac"])
    assert metas["units.km"].upstream_fingerprint == h.fingerprint
    for i in range(N_CUTS):
        row = ds[i]
        samples = int(round(float(row["duration"]) * 16000))
        fh, fw = row["feats.hubert"], row["feats.whisper"]
        assert fh.dtype == np.float16 and fh.shape[1] == 32 and abs(fh.shape[0] - samples / 320) <= 1
        assert fw.dtype == np.float16 and fw.shape == (-(-samples // 320), 32)
        ce, cd = row["codes.enc"], row["codes.dac"]
        assert ce.dtype == np.uint16 and ce.shape == (-(-(samples * 3 // 2) // 320), 4)
        assert cd.dtype == np.uint16 and cd.shape == (-(-samples // 320), 3)
        assert int(cd.max()) < 64
        units = row["units.km"]  # k-means over the ssl group: one unit per ssl frame
        assert units.shape == (fh.shape[0],) and int(units.max()) < 4
    report = json.loads((out / "report.json").read_text())
    assert report["quarantine"]["count"] == 0


def test_rerun_skips_every_shard(output: tuple[Path, Any]) -> None:
    out, recipe = output
    report = run(recipe, out, INLINE).to_json()
    stages = {s["stage"]: s for s in report["stages"]}
    for name in ("hubert", "km", "whisper", "enc", "dac"):
        assert stages[name]["shards_total"] == 2
        assert stages[name]["shards_skipped"] == 2, stages[name]


def test_stage_output_equals_library(output: tuple[Path, Any], models: dict[str, Path]) -> None:
    from lhotse import CutSet

    from speechtok.features.ssl import SSLFeatureExtractor
    from speechtok.features.whisper_states import WhisperEncoderStates
    from speechtok.tokenizers.acoustic import build_tokenizer
    from speechtok.tokenizers.acoustic.dac_codec import DacConfig
    from speechtok.tokenizers.acoustic.encodec_codec import EncodecArch, EncodecConfig

    out, _ = output
    cuts = list(CutSet.from_file(out / "ingest" / "cuts.jsonl.gz"))
    ds = ShardDataset(out, groups=("cuts", *GROUPS))
    ssl = SSLFeatureExtractor(str(models["hubert"]), layers=(2,))
    whisper = WhisperEncoderStates(str(models["whisper"]), backend="transformers")
    enc = build_tokenizer(EncodecConfig(model="24khz", bandwidth=3.0, checkpoint=str(models["encodec"]),
                                        arch=EncodecArch(**ENC_ARCH)))  # type: ignore[arg-type]
    dac_ = build_tokenizer(DacConfig(model="16khz", checkpoint=str(models["dac"]), n_codebooks=3))
    for i in (0, N_CUTS - 1):
        cut = cuts[i]
        row = ds[i]
        assert row["id"] == cut.id
        w16 = cut.load_audio()[0]
        np.testing.assert_array_equal(row["feats.hubert"], ssl.extract(w16)[2])
        np.testing.assert_array_equal(row["feats.whisper"], whisper.extract(w16))
        w24 = cut.resample(24000).load_audio()[0]
        np.testing.assert_array_equal(row["codes.enc"], enc.encode_batch([w24], 24000)[0])
        np.testing.assert_array_equal(row["codes.dac"], dac_.encode_batch([w16], 16000)[0])


def _cut_of(path: Path) -> Any:
    from lhotse import Recording
    from lhotse.cut import MonoCut

    rec = Recording.from_file(path)
    return MonoCut(id=path.stem, start=0.0, duration=rec.duration, channel=0, recording=rec)


def test_bad_cuts_are_quarantined(tmp_path: Path, models: dict[str, Path]) -> None:
    rng = np.random.default_rng(0)
    good = (0.1 * rng.standard_normal(8000)).astype(np.float32)
    nan = good.copy()
    nan[100:110] = np.nan
    short = good[:200]  # < 400 samples: no SSL frame
    for name, x in (("good", good), ("nan", nan), ("short", short)):
        sf.write(tmp_path / f"{name}.wav", x, 16000, subtype="FLOAT")
    items = [CutItem(cut=_cut_of(tmp_path / f"{n}.wav")) for n in ("good", "nan", "short")]
    ssl = build_stage({"type": "ssl", "name": "h", "config": {"model": str(models["hubert"]),
                                                             "layers": [1]}})
    res = ssl.process(items)
    assert isinstance(res[0], dict) and res[0]["feats"].shape == (24, 32)
    assert isinstance(res[1], Quarantine) and res[1].reason == "nan_or_inf"
    assert isinstance(res[2], Quarantine) and res[2].reason == "too_short"
    assert ssl.empty_row("x")["feats"].shape == (0, 32)
    codec = build_stage({"type": "codec", "name": "d", "config": {
        "codec": "dac16k", "checkpoint": str(models["dac"])}})
    res = codec.process(items)
    assert isinstance(res[0], dict) and res[0]["codes"].shape == (25, 4)
    assert isinstance(res[1], Quarantine) and res[1].reason == "nan_or_inf"
    assert isinstance(res[2], dict) and res[2]["codes"].shape == (1, 4)
    assert codec.empty_row("x")["codes"].shape == (0, 4)


def test_fingerprint_follows_model_checksum_and_config_errors(tmp_path: Path) -> None:
    from speechtok.errors import ConfigError

    d = _hubert(tmp_path / "h")
    spec = {"type": "ssl", "name": "h", "config": {"model": str(d), "layers": [1]}}
    fp1 = build_stage(spec).fingerprint("up")
    assert build_stage(spec).fingerprint("up") == fp1
    shutil.rmtree(d)
    _hubert(d, seed=1)  # same path and config, other weights
    assert build_stage(spec).fingerprint("up") != fp1
    with pytest.raises(ConfigError, match="codec"):
        build_stage({"type": "codec", "name": "c", "config": {"codec": "mp3", "checkpoint": "x"}})
    with pytest.raises(ConfigError, match="n_codebooks"):
        build_stage({"type": "codec", "name": "c", "config": {"codec": "encodec24k",
                                                              "checkpoint": "x", "n_codebooks": 2}})
    with pytest.raises(ConfigError, match="backend"):
        build_stage({"type": "whisper", "name": "w", "config": {"model": "x", "backend": "onnx"}})
    with pytest.raises(ConfigError, match="n_codebooks"):  # a string where an int belongs
        build_stage({"type": "codec", "name": "c", "config": {"codec": "dac16k",
                                                              "checkpoint": "x", "n_codebooks": "3"}})
    with pytest.raises(ConfigError, match="input"):
        build_stage({"type": "ssl", "name": "h", "input": "feats.fbank",
                     "config": {"model": str(d)}})


def test_worker_pool_matches_inline(output: tuple[Path, Any], models: dict[str, Path],
                                    tmp_path: Path) -> None:
    """The stage types resolve in pool workers too, and their shards are byte-identical."""
    ref, recipe = output
    raw = {"ingest": {"source": recipe.ingest.source, "sample_rate": 16000},
           "shards": {"cuts_per_shard": 3},
           "stages": [{"type": "codec", "name": "dac", "config": {
               "codec": "dac16k", "checkpoint": str(models["dac"]), "n_codebooks": 3}}]}
    out = tmp_path / "out"
    run(recipe_from_dict(raw), out, RunOptions(executor="local", workers=1, progress=False))
    for shard in (0, 1):
        name = f"shards/{shard:05d}.codes.dac.arrow"
        assert (out / name).read_bytes() == (ref / name).read_bytes()


def test_real_lyra_and_whisper_ct2(tmp_path: Path, lyra_dir: Path, whisper_ct2_dir: Path) -> None:
    """Released models (from ../shared): stage rows equal the library, metadata is filled."""
    from speechtok.features.whisper_states import WhisperEncoderStates
    from speechtok.tokenizers.acoustic import build_tokenizer
    from speechtok.tokenizers.acoustic.lyra_codec import LyraConfig

    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal(12_000)).astype(np.float32)
    sf.write(tmp_path / "a.wav", x, 8000, subtype="FLOAT")  # 8 kHz: resampled to 16 kHz
    item = CutItem(cut=_cut_of(tmp_path / "a.wav"))
    w16 = item.cut.resample(16000).load_audio()[0]
    lyra = build_stage({"type": "codec", "name": "l", "config": {
        "codec": "lyra", "checkpoint": str(lyra_dir), "n_codebooks": 8}})
    assert lyra.group_meta_fields()["vocab_size"] == 16
    row = lyra.process([item])[0]
    assert isinstance(row, dict) and row["codes"].shape == (75, 8)
    ref = build_tokenizer(LyraConfig(model_dir=str(lyra_dir), num_quantizers=8))
    np.testing.assert_array_equal(row["codes"], ref.encode_batch([w16], 16000)[0])
    whisper = build_stage({"type": "whisper", "name": "w", "config": {
        "model": str(whisper_ct2_dir), "backend": "ctranslate2"}})
    meta = whisper.group_meta_fields()
    assert meta["dim"] == 384 and str(meta["model_checksum"]).startswith("sha256:")
    row = whisper.process([item])[0]
    assert isinstance(row, dict) and row["feats"].shape == (75, 384)
    direct = WhisperEncoderStates(str(whisper_ct2_dir), backend="ctranslate2").extract(w16)
    np.testing.assert_array_equal(row["feats"], direct)


def test_run_guarded_isolates_a_failing_cut() -> None:
    from speechtok.errors import ConfigError
    from speechtok.pipeline.stages.base import fill_feats, run_guarded

    def fn(ws: list[np.ndarray]) -> list[np.ndarray]:
        if any(len(w) == 7 for w in ws):
            raise RuntimeError("bad cut")
        return [np.ones((len(w), 2), np.float32) for w in ws]

    waves = [np.zeros(n, np.float32) for n in (3, 7, 5)]
    res = run_guarded(fn, waves)
    assert isinstance(res[1], RuntimeError) and res[0].shape == (3, 2) and res[2].shape == (5, 2)
    out: list[Any] = [{"id": "a"}, {"id": "b"}, {"id": "c"}]
    fill_feats(out, [0, 1, 2], res, dtype="float16")
    assert out[0]["feats"].dtype == np.float16
    assert isinstance(out[1], Quarantine) and out[1].reason == "model_error"

    def wrong_rate(ws: list[np.ndarray]) -> list[np.ndarray]:
        raise ConfigError("sr", 8000, "must be 16000")

    with pytest.raises(ConfigError):  # configuration errors are not per-cut problems
        run_guarded(wrong_rate, waves)
