"""DAC tokenizer: `.pth` loading without unpickling, exact batching, chunk edges, decode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from speechtok.errors import ConfigError, InputError
from speechtok.tokenizers.acoustic import build_tokenizer
from speechtok.tokenizers.acoustic.dac_codec import DacConfig, DacTokenizer, load_dac

pytestmark = [pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning"),
              pytest.mark.usefixtures("one_torch_thread")]

TINY: dict[str, Any] = dict(
    encoder_dim=4, encoder_rates=[2, 4, 5, 8], decoder_dim=16, decoder_rates=[8, 5, 4, 2],
    n_codebooks=4, codebook_size=64, codebook_dim=4, sample_rate=16_000,
)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A tiny random DAC saved the way `DAC.save(..., package=False)` and the releases do."""
    import dac

    torch.manual_seed(0)
    model = dac.DAC(**TINY)
    path = tmp_path_factory.mktemp("dac") / "weights_16khz.pth"
    model.save(str(path), package=False)
    return path, model


def _waves(n: int, seed: int, max_s: float = 2.5, sr: int = 16_000) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.choice(rng.integers(sr // 5, int(max_s * sr), size=12), size=n)
    out = []
    for k in lengths:
        t = np.arange(k) / sr
        w = 0.3 * np.sin(2 * np.pi * (150 + 250 * t) * t) + 0.05 * rng.standard_normal(k)
        out.append(w.astype(np.float32))
    return out


def _agree(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return float(np.mean(np.concatenate([(x == y).all(axis=1) for x, y in zip(a, b, strict=True)])))


def test_default_batch_is_bitwise_exact_on_60_cuts(ckpt: tuple[Path, Any]) -> None:
    cfg = DacConfig(model="16khz", checkpoint=str(ckpt[0]), n_codebooks=3, chunk_s=1.0, context_s=0.3)
    tok = DacTokenizer(cfg)
    assert tok.info.num_codebooks == 3 and tok.info.frame_rate == 50.0 and tok.info.codebook_size == 64
    waves = _waves(60, seed=0)
    batched = tok.encode_batch(waves, 16_000)
    for w, c in zip(waves, batched, strict=True):
        assert c.dtype == np.uint16 and c.shape == (-(-len(w) // 320), 3)
        assert np.array_equal(c, tok.encode_batch([w], 16_000)[0])
    assert len(np.unique(np.concatenate([c[:, 1] for c in batched]))) > 10  # codes vary


def test_exact_length_buckets_beat_padding(ckpt: tuple[Path, Any]) -> None:
    """Batches of up to 8 equal-length pieces (measured: bitwise equal) vs zero padding, which
    changes the last frames of a non-causal encoder."""
    tok = DacTokenizer(DacConfig(model="16khz", checkpoint=str(ckpt[0]), max_batch_size=8))
    waves = _waves(60, seed=0)
    single = [tok.encode_batch([w], 16_000)[0] for w in waves]
    sizes: list[int] = []
    inner = tok._encode

    def spy(x: np.ndarray) -> list[np.ndarray]:
        sizes.append(x.shape[0])
        return inner(x)

    tok._encode = spy  # type: ignore[method-assign]
    assert _agree(tok.encode_batch(waves, 16_000), single) >= 0.995
    assert max(sizes) > 1
    longest = max(len(w) for w in waves)
    padded = np.stack([np.pad(w, (0, longest - len(w))) for w in waves[:8]])[:, None]
    out = [c[: len(s)] for c, s in zip(inner(padded), single[:8], strict=False)]
    assert not all(np.array_equal(o, s) for o, s in zip(out, single[:8], strict=True))


def test_codes_equal_the_package_encode(ckpt: tuple[Path, Any]) -> None:
    path, model = ckpt
    tok = build_tokenizer(DacConfig(model="16khz", checkpoint=str(path)))
    assert tok.info.num_codebooks == 4
    model.eval()
    for w in _waves(3, seed=1):
        with torch.no_grad():
            x = model.preprocess(torch.from_numpy(w)[None, None], 16_000)
            ref = model.encode(x)[1][0].T.numpy()
        assert np.array_equal(tok.encode_batch([w], 16_000)[0], ref)


def test_chunk_edges_agree_with_unchunked(ckpt: tuple[Path, Any]) -> None:
    """A purely convolutional encoder: with context >= its receptive field, chunking is exact."""
    path = str(ckpt[0])
    chunked = DacTokenizer(DacConfig(model="16khz", checkpoint=path, chunk_s=1.0, context_s=0.4))
    whole = DacTokenizer(DacConfig(model="16khz", checkpoint=path, chunk_s=0))
    waves = _waves(4, seed=2, max_s=6.0)
    a, b = chunked.encode_batch(waves, 16_000), whole.encode_batch(waves, 16_000)
    eq = np.concatenate([(x == y).all(axis=1) for x, y in zip(a, b, strict=True)])
    assert eq.mean() == 1.0
    # without context the chunk edges see zero padding: some frames change
    bare = DacTokenizer(DacConfig(model="16khz", checkpoint=path, chunk_s=1.0, context_s=0))
    c = bare.encode_batch(waves, 16_000)
    assert np.concatenate([(x == y).all(axis=1) for x, y in zip(c, b, strict=True)]).mean() < 1.0


def test_decode_shapes(ckpt: tuple[Path, Any]) -> None:
    tok = DacTokenizer(DacConfig(model="16khz", checkpoint=str(ckpt[0]), chunk_s=1.0))
    w = _waves(1, seed=3, max_s=3.5)[0]
    codes = tok.encode_batch([w], 16_000)[0]
    y = tok.decode(codes, num_samples=len(w))
    assert y.shape == w.shape and y.dtype == np.float32 and np.isfinite(y).all()
    whole = DacTokenizer(DacConfig(model="16khz", checkpoint=str(ckpt[0]), chunk_s=0))
    # chunked decoding with 1 s context equals whole decoding away from the zero-filled tail
    np.testing.assert_allclose(y[:-2000], whole.decode(codes, len(w))[:-2000], atol=1e-5)


def test_config_and_file_errors(ckpt: tuple[Path, Any], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="n_codebooks"):
        DacTokenizer(DacConfig(model="16khz", checkpoint=str(ckpt[0]), n_codebooks=5))
    with pytest.raises(ConfigError, match="sample rate"):
        DacTokenizer(DacConfig(model="44khz", checkpoint=str(ckpt[0])))
    with pytest.raises(ConfigError, match="checkpoint"):
        DacConfig(model="16khz").validate()
    plain = tmp_path / "plain.pth"
    torch.save({"weight": torch.zeros(2)}, plain)
    with pytest.raises(InputError, match="metadata"):
        load_dac(str(plain))


def test_torch_package_files_are_refused(ckpt: tuple[Path, Any], tmp_path: Path) -> None:
    """`DAC.save(package=True)` writes a torch.package (code + pickles): not read, with a reason."""
    path = tmp_path / "packaged.pth"
    try:
        ckpt[1].save(str(path), package=True)
    except Exception as e:  # pragma: no cover - depends on torch.package support for the env
        pytest.skip(f"torch.package cannot save DAC here: {e}")
    with pytest.raises(InputError, match="weights-only|DAC weights file"):
        load_dac(str(path))


def test_released_kwargs_give_the_released_rates() -> None:
    from speechtok.tokenizers.acoustic.dac_codec import RELEASED_KWARGS

    hops = {k: int(np.prod(v["encoder_rates"])) for k, v in RELEASED_KWARGS.items()}
    assert hops == {"44khz": 512, "24khz": 320, "16khz": 320}
    # 16 kHz: 12 codebooks x 10 bits x 50 Hz = 6 kbps; 44 kHz: 9 x 10 x 86.13 Hz = 7.75 kbps
    assert RELEASED_KWARGS["16khz"]["n_codebooks"] * 10 * 16_000 / hops["16khz"] == 6000
