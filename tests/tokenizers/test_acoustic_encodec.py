"""EnCodec tokenizer: official-format loading, exact batching, chunk edges, decode."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from speechtok.errors import ConfigError, InputError
from speechtok.tokenizers.acoustic import build_tokenizer
from speechtok.tokenizers.acoustic.encodec_codec import (
    EncodecArch,
    EncodecConfig,
    EncodecTokenizer,
    build_encodec_model,
    randomize_codebooks,
)

pytestmark = [pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning"),
              pytest.mark.usefixtures("one_torch_thread")]

TINY = EncodecArch(n_filters=4, dimension=16, lstm=1)


def _save_official(model: torch.nn.Module, folder: Path, name: str) -> Path:
    """Saves a state dict the way encodec's released files are: ``name-<sha256[:8]>.th``."""
    tmp = folder / f"{name}.tmp"
    torch.save(model.state_dict(), tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]
    path = folder / f"{name}-{digest}.th"
    tmp.rename(path)
    return path


@pytest.fixture(scope="module")
def ckpt24(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    model = build_encodec_model("24khz", TINY)
    randomize_codebooks(model, torch.from_numpy(np.concatenate(_waves(24_000, 4, seed=9)))[None, None])
    return _save_official(model, tmp_path_factory.mktemp("enc24"), "encodec_24khz"), model


@pytest.fixture(scope="module")
def ckpt48(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(1)
    model = build_encodec_model("48khz", TINY)
    w = torch.from_numpy(np.concatenate(_waves(48_000, 2, seed=9)))
    randomize_codebooks(model, torch.stack([w, w])[None])
    return _save_official(model, tmp_path_factory.mktemp("enc48"), "encodec_48khz"), model


def _waves(sr: int, n: int, seed: int, max_s: float = 2.5) -> list[np.ndarray]:
    """`n` noisy chirps; 12 distinct lengths so that exact-length buckets hold several cuts."""
    rng = np.random.default_rng(seed)
    lengths = rng.choice(rng.integers(sr // 5, int(max_s * sr), size=12), size=n)
    out = []
    for k in lengths:
        t = np.arange(k) / sr
        w = 0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t) + 0.05 * rng.standard_normal(k)
        out.append(w.astype(np.float32))
    return out


def _agree(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Fraction of frames whose Q codes are all equal."""
    return float(np.mean(np.concatenate([(x == y).all(axis=1) for x, y in zip(a, b, strict=True)])))


def test_default_batch_is_bitwise_exact_on_60_cuts(ckpt24: tuple[Path, torch.nn.Module]) -> None:
    """CPU default (micro-batch 1, the fastest on CPU): codes identical to each cut alone."""
    tok = EncodecTokenizer(EncodecConfig(checkpoint=str(ckpt24[0]), arch=TINY, chunk_s=1.0, context_s=0.25))
    waves = _waves(24_000, 60, seed=0)
    assert len(set(len(w) for w in waves)) == 12
    batched = tok.encode_batch(waves, 24_000)
    for w, c in zip(waves, batched, strict=True):
        assert c.dtype == np.uint16 and c.shape == (-(-len(w) // 320), 8)
        assert np.array_equal(c, tok.encode_batch([w], 24_000)[0])
    assert len(np.unique(np.concatenate([c[:, 1] for c in batched]))) > 10  # codes vary


def test_exact_length_buckets_beat_padding(ckpt24: tuple[Path, torch.nn.Module]) -> None:
    """Micro-batches of 8 equal-length pieces vs zero-padded batches, against each cut alone.

    Buckets remove padding effects; what remains are rare argmin flips from float kernels that
    round differently per batch size (measured 99.92 % of frames equal). Padding changes the
    last frame of every padded cut.
    """
    path = str(ckpt24[0])
    tok = EncodecTokenizer(EncodecConfig(checkpoint=path, arch=TINY, max_batch_size=8))
    waves = _waves(24_000, 60, seed=0)
    single = [tok.encode_batch([w], 24_000)[0] for w in waves]
    sizes: list[int] = []
    inner = tok._encode_24k

    def spy(x: np.ndarray) -> list[np.ndarray]:
        sizes.append(x.shape[0])
        return inner(x)

    tok._encode_24k = spy  # type: ignore[method-assign]
    assert _agree(tok.encode_batch(waves, 24_000), single) >= 0.995
    assert max(sizes) > 1  # real batches were formed
    longest = max(len(w) for w in waves)
    padded = np.stack([np.pad(w, (0, longest - len(w))) for w in waves[:8]])[:, None]
    out = [c[: len(s)] for c, s in zip(inner(padded), single[:8], strict=False)]
    assert not all(np.array_equal(o, s) for o, s in zip(out, single[:8], strict=True))


def test_codes_equal_the_package_encode(ckpt24: tuple[Path, torch.nn.Module]) -> None:
    path, model = ckpt24
    tok = build_tokenizer(EncodecConfig(checkpoint=str(path), arch=TINY, bandwidth=3.0))
    assert tok.info.num_codebooks == 4 and tok.info.bitrate == 3000.0 and tok.info.frame_rate == 75.0
    model.eval()
    model.set_target_bandwidth(3.0)
    for w in _waves(24_000, 3, seed=1):
        with torch.no_grad():
            ref = model.encode(torch.from_numpy(w)[None, None])[0][0][0].T.numpy()
        assert np.array_equal(tok.encode_batch([w], 24_000)[0], ref)


def test_chunk_edges_agree_with_unchunked(ckpt24: tuple[Path, torch.nn.Module]) -> None:
    """Causal convs + LSTM: with 0.5 s left context, >= 95 % of frames equal unchunked codes."""
    path = str(ckpt24[0])
    chunked = EncodecTokenizer(EncodecConfig(checkpoint=path, arch=TINY, chunk_s=1.0, context_s=0.5))
    whole = EncodecTokenizer(EncodecConfig(checkpoint=path, arch=TINY, chunk_s=0))
    waves = _waves(24_000, 4, seed=2, max_s=6.0)
    a, b = chunked.encode_batch(waves, 24_000), whole.encode_batch(waves, 24_000)
    eq = np.concatenate([(x == y).all(axis=1) for x, y in zip(a, b, strict=True)])
    assert all(x.shape == y.shape for x, y in zip(a, b, strict=True))
    assert eq.mean() >= 0.95  # measured: 1.0 at 0.5 s, 0.99 at 0.25 s, 0.81 without context
    bare = EncodecTokenizer(EncodecConfig(checkpoint=path, arch=TINY, chunk_s=1.0, context_s=0))
    c = bare.encode_batch(waves, 24_000)
    assert np.concatenate([(x == y).all(axis=1) for x, y in zip(c, b, strict=True)]).mean() < 0.95
    # The first chunk has no left edge, so its frames see the same samples as unchunked ones;
    # but a 1 s and a 6 s conv input take different float kernels, which round differently on
    # some x86-64 CPUs, and a frame near a quantizer cell boundary may flip. Stated tolerance:
    # >= 98 % of those frames equal (measured 100 % on this machine).
    first = np.concatenate([(x[:75] == y[:75]).all(axis=1) for x, y in zip(a, b, strict=True)])
    assert first.mean() >= 0.98


def test_decode_length_and_chunked_decode(ckpt24: tuple[Path, torch.nn.Module]) -> None:
    tok = EncodecTokenizer(EncodecConfig(checkpoint=str(ckpt24[0]), arch=TINY, chunk_s=1.0))
    w = _waves(24_000, 1, seed=3, max_s=4.0)[0]
    codes = tok.encode_batch([w], 24_000)[0]
    y = tok.decode(codes, num_samples=len(w))
    assert y.dtype == np.float32 and y.shape == w.shape and np.isfinite(y).all()
    assert tok.decode(codes).shape == (len(codes) * 320,)
    with pytest.raises(InputError, match="must lie in"):
        tok.decode(np.full_like(codes, 1024))


def test_48k_segments_batch_exactly_and_decode_like_the_package(
    ckpt48: tuple[Path, torch.nn.Module],
) -> None:
    path, model = ckpt48
    tok = EncodecTokenizer(EncodecConfig(model="48khz", checkpoint=str(path), arch=TINY, bandwidth=6.0))
    waves = _waves(48_000, 12, seed=4, max_s=2.2)
    full = tok.encode_batch_with_scales(waves, 48_000)
    for w, (c, s) in zip(waves, full, strict=True):
        alone = tok.encode_batch_with_scales([w], 48_000)[0]
        assert np.array_equal(c, alone[0]) and s is not None and np.array_equal(s, alone[1])
    wide = EncodecTokenizer(
        EncodecConfig(model="48khz", checkpoint=str(path), arch=TINY, bandwidth=6.0, max_batch_size=8)
    )
    assert _agree([c for c, _ in wide.encode_batch_with_scales(waves, 48_000)], [c for c, _ in full]) >= 0.99
    w, (c, s) = waves[0], full[0]
    model.eval()
    model.set_target_bandwidth(6.0)
    with torch.no_grad():
        frames = model.encode(torch.from_numpy(np.stack([w, w]))[None])
        ref_codes = torch.cat([f[0] for f in frames], dim=-1)[0].T.numpy()
        ref_audio = model.decode(frames)[0].mean(0).numpy()[: len(w)]
    assert np.array_equal(c, ref_codes)
    y = tok.decode(c, num_samples=len(w), scales=s)
    np.testing.assert_allclose(y, ref_audio, atol=1e-5)


def test_config_errors(ckpt24: tuple[Path, torch.nn.Module], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bandwidth"):
        EncodecConfig(checkpoint="x", bandwidth=5.0).validate()
    with pytest.raises(ConfigError, match="checkpoint"):
        EncodecConfig().validate()
    with pytest.raises(ConfigError, match="sample rate"):
        EncodecTokenizer(EncodecConfig(checkpoint=str(ckpt24[0]), arch=TINY)).encode_batch(
            [np.zeros(100, np.float32)], 16_000
        )
    bad = tmp_path / "encodec_24khz-00000000.th"
    bad.write_bytes(ckpt24[0].read_bytes())
    with pytest.raises(InputError, match="sha256"):
        EncodecTokenizer(EncodecConfig(checkpoint=str(bad), arch=TINY))
    with pytest.raises(InputError, match="does not fit"):
        EncodecTokenizer(EncodecConfig(checkpoint=str(ckpt24[0]), arch=EncodecArch(n_filters=8)))


class _Evil:
    """Any non-tensor class: unpickling it would run import machinery from the file."""


def test_refuses_pickled_code(tmp_path: Path) -> None:
    path = tmp_path / "evil.th"
    torch.save({"x": _Evil()}, path)
    with pytest.raises(InputError, match="never unpickles"):
        EncodecTokenizer(EncodecConfig(checkpoint=str(path), arch=TINY))


@pytest.mark.parametrize("name", ["24khz", "48khz"])
def test_default_arch_matches_the_released_layout(name: str) -> None:
    """The released checkpoints load strictly: same parameter names and shapes as the package's
    own `encodec_model_{name}(pretrained=False)`."""
    from encodec.model import EncodecModel

    ours = build_encodec_model(name, EncodecArch()).state_dict()
    ref = getattr(EncodecModel, f"encodec_model_{name}")(pretrained=False).state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in ref.items()}
