"""Every tokenizer speechtok has, behind one small adapter for the token cards.

A `CardTokenizer` encodes 16 kHz waves into token matrices ``(T, Q)`` (units: ``Q = 1``) and,
where a way back exists, decodes them to audio. Names (`NAMES`):

| name | tokens | weights here | way back |
|---|---|---|---|
| ``kmeans-whisper`` | k-means units of Whisper tiny.en states (CTranslate2) | real (../shared) + k-means [1] | none |
| ``kmeans-fbank`` | k-means units of 80-bin fbank | weight-free + k-means [1] | centroid vocoder (Griffin-Lim) |
| ``dmel`` | dMel (16 bins x 40 mel channels) | weight-free, ranges fitted on the corpus | Griffin-Lim |
| ``lyra`` | Lyra v2 codes, 16 codebooks | real (../shared/models/lyra-v2) | LyraGAN |
| ``encodec24k``, ``dac16k`` | codec codes | random weights, released sizes: speed only | decoder (not scored) |
| ``mimi``, ``xcodec`` | codec codes | random weights, released sizes: speed only | decoder (not scored) |

[1] k-means fitted on the corpus or given.

Codec weights that are not here are drawn at random at the released sizes and the card says
"random weights: speed only": frame rate, codebooks, bitrate, RTF and batch invariance are real
measurements of the architecture; quality figures would be meaningless and are not computed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from speechtok import atomic
from speechtok.errors import ConfigError, InputError
from speechtok.tokenizers.acoustic import build_tokenizer
from speechtok.tokenizers.acoustic.hf_testing import save_random_model
from speechtok.tokenizers.acoustic.lyra_codec import LyraConfig, LyraTokenizer
from speechtok.tokenizers.kmeans_sampling import ArrayFrameSource

SR = 16_000
REAL, FITTED, RANDOM = "real", "fitted on the corpus", "random weights: speed only"


@dataclass(kw_only=True)
class CardTokenizer:
    """One tokenizer as the cards see it.

    Attributes:
        name: registry name.
        family: ``semantic`` (units), ``spectral`` (dMel) or ``acoustic`` (codec codes).
        frame_rate: token frames per second.
        num_codebooks: tokens per frame (Q).
        vocab_size: entries per codebook (K).
        causal: how it sees time (``causal, streaming``, ``non-causal``, ...).
        weights: `REAL`, `FITTED` or `RANDOM`, with `weights_note` saying which.
        encode: 16 kHz float32 waves -> int (T_i, Q) tokens (one call may batch).
        decode: tokens, num_samples -> 16 kHz float32 wave; None when there is no way back.
    """

    name: str
    family: str
    frame_rate: float
    num_codebooks: int
    vocab_size: int
    causal: str
    weights: str
    weights_note: str
    encode: Callable[[Sequence[np.ndarray]], list[np.ndarray]]
    decode: Callable[[np.ndarray, int], np.ndarray] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def bitrate(self) -> float:
        """Nominal bits per second: frame rate * Q * log2(K)."""
        return float(self.frame_rate * self.num_codebooks * np.log2(self.vocab_size))


@dataclass(frozen=True, kw_only=True)
class CardOptions:
    """Where models come from.

    Attributes:
        shared: the ``../shared`` folder (Whisper tiny.en, Lyra v2).
        kmeans_dir: a fitted `KMeansModel` directory for ``kmeans-*`` (else fitted on the corpus).
        k: clusters when fitting on the corpus.
        work_dir: where random-weight codecs are saved (a temporary folder when None).
    """

    shared: Path
    kmeans_dir: str | None = None
    k: int = 100
    work_dir: str | None = None


def _resampler(src: int, dst: int) -> Callable[[np.ndarray], np.ndarray]:
    if src == dst:
        return lambda w: w
    # lazy: lhotse (and torch with it) takes seconds to import
    from lhotse.augmentation import Resample

    rs = Resample(src, dst)
    return lambda w: rs(w[None])[0].astype(np.float32)


def _kmeans(feats: Sequence[np.ndarray], opts: CardOptions) -> Any:
    # lazy: brings faiss, which only this path needs (`speechtok --help` imports this module)
    from speechtok.tokenizers.kmeans import KMeansConfig, KMeansModel, fit_kmeans

    if opts.kmeans_dir:
        return KMeansModel.load(opts.kmeans_dir)
    frames = [np.asarray(f, np.float32) for f in feats]
    total = sum(len(f) for f in frames)
    if total < opts.k:
        raise InputError("corpus", f"has {total} frames, fewer than k={opts.k}; use more cuts or a smaller k")
    return fit_kmeans(ArrayFrameSource(frames), KMeansConfig(k=opts.k, iterations=20, seed=0))


def _kmeans_whisper(fit_waves: Sequence[np.ndarray], opts: CardOptions) -> CardTokenizer:
    # lazy: brings torch, which only this path needs (`speechtok --help` imports this module)
    from speechtok.features.whisper_states import WhisperEncoderStates

    model_dir = opts.shared / "models" / "whisper-tiny.en-ct2"
    if not (model_dir / "model.bin").is_file():
        raise ConfigError("shared", str(opts.shared), "must hold models/whisper-tiny.en-ct2 for kmeans-whisper")
    states = WhisperEncoderStates(str(model_dir), backend="ctranslate2", threads=1)
    km = _kmeans(states.extract_batch(list(fit_waves), sr=SR), opts)

    def encode(waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [km.assign(np.asarray(f, np.float32)).astype(np.int64)[:, None]
                for f in states.extract_batch(list(waves), sr=SR)]

    return CardTokenizer(name="kmeans-whisper", family="semantic", frame_rate=50.0, num_codebooks=1,
                         vocab_size=int(km.centroids.shape[0]), causal="non-causal (30 s Whisper windows)",
                         weights=REAL,
                         weights_note=f"Whisper tiny.en (CTranslate2) layer states; k-means K={km.centroids.shape[0]} "
                         + ("given" if opts.kmeans_dir else "fitted on the corpus"), encode=encode)


def _kmeans_fbank(fit_waves: Sequence[np.ndarray], opts: CardOptions) -> CardTokenizer:
    # lazy: brings torch, faiss, which only this path needs (`speechtok --help` imports this module)
    from speechtok.features.fbank import FbankConfig, compute_fbank_batch
    from speechtok.tokenizers.unit_vocoder import CentroidVocoder

    fb = FbankConfig()
    km = _kmeans(compute_fbank_batch(list(fit_waves), SR, fb), opts)
    voc = CentroidVocoder.from_kmeans(km, fb)

    def encode(waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [km.assign(f).astype(np.int64)[:, None] for f in compute_fbank_batch(list(waves), SR, fb)]

    def decode(tokens: np.ndarray, n: int) -> np.ndarray:
        y = voc.units_to_wave(tokens[:, 0])
        return np.pad(y, (0, max(0, n - len(y))))[:n].astype(np.float32)

    return CardTokenizer(name="kmeans-fbank", family="semantic", frame_rate=float(fb.frame_rate),
                         num_codebooks=1, vocab_size=int(km.centroids.shape[0]), causal="frame-local (25 ms windows)",
                         weights=FITTED,
                         weights_note=f"fbank k-means K={km.centroids.shape[0]}; centroid vocoder (Griffin-Lim)",
                         encode=encode, decode=decode)


def _dmel(fit_waves: Sequence[np.ndarray], opts: CardOptions) -> CardTokenizer:
    # lazy: brings torch, which only this path needs (`speechtok --help` imports this module)
    from speechtok.tokenizers.dmel import DMelConfig, DMelTokenizer

    # 40 mel channels on the 400-point FFT (the card's recorded figures); 80 would need
    # n_fft >= 1024 to decode (DMelConfig.validate says so)
    tok = DMelTokenizer.fit_waves(list(fit_waves), DMelConfig(n_mels=40, n_fft=400))
    info = tok.info

    def encode(waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(t, np.int64) for t in tok.encode_batch(list(waves))]

    def decode(tokens: np.ndarray, n: int) -> np.ndarray:
        return np.asarray(tok.decode_wave(tokens.astype(np.uint16), length=n), np.float32)

    return CardTokenizer(name="dmel", family="spectral", frame_rate=float(info.frame_rate),
                         num_codebooks=int(info.num_codebooks), vocab_size=int(info.vocab_size),
                         causal="frame-local (25 ms windows)", weights=FITTED,
                         weights_note="per-channel log-mel ranges fitted on the corpus; Griffin-Lim",
                         encode=encode, decode=decode)


def _codec(tok: Any, name: str, causal: str, weights: str, note: str) -> CardTokenizer:
    """Adapter over an `AcousticTokenizer` (waves resampled from 16 kHz to its rate and back)."""
    info = tok.info
    up, down = _resampler(SR, info.sample_rate), _resampler(info.sample_rate, SR)

    def encode(waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(c, np.int64) for c in tok.encode_batch([up(w) for w in waves], info.sample_rate)]

    def decode(tokens: np.ndarray, n: int) -> np.ndarray:
        y = down(tok.decode(tokens.astype(np.uint16)))
        return np.pad(y, (0, max(0, n - len(y))))[:n].astype(np.float32)

    return CardTokenizer(name=name, family="acoustic", frame_rate=float(info.frame_rate),
                         num_codebooks=int(info.num_codebooks), vocab_size=int(info.codebook_size),
                         causal=causal, weights=weights, weights_note=note, encode=encode, decode=decode,
                         extra={"sample_rate": info.sample_rate})


def _lyra(fit_waves: Sequence[np.ndarray], opts: CardOptions) -> CardTokenizer:
    d = opts.shared / "models" / "lyra-v2"
    tok = LyraTokenizer(LyraConfig(model_dir=str(d), num_quantizers=16))
    return _codec(tok, "lyra", "causal, streaming", REAL, "Lyra v2 release (TFLite), 16 codebooks = 3.2 kbps")


def _random_dir(opts: CardOptions) -> Path:
    if not opts.work_dir:
        raise ConfigError("work_dir", opts.work_dir, "must name a folder for the random-weight model files")
    p = Path(opts.work_dir)
    p.mkdir(parents=True, exist_ok=True)
    return p


def _encodec(fit_waves: Sequence[np.ndarray], opts: CardOptions) -> CardTokenizer:
    # lazy: torch takes seconds to import; encodec (with torchaudio) takes seconds to import; only this codec needs it
    import torch
    from encodec.model import EncodecModel

    # lazy: brings torch, which only this path needs (`speechtok --help` imports this module)
    from speechtok.tokenizers.acoustic.encodec_codec import EncodecConfig, EncodecTokenizer, randomize_codebooks

    torch.manual_seed(0)
    model = EncodecModel.encodec_model_24khz(pretrained=False)
    x = _resampler(SR, 24_000)(np.concatenate(list(fit_waves)[:3]))
    randomize_codebooks(model, torch.from_numpy(x)[None, None])
    path = _random_dir(opts) / "encodec_24khz.th"
    with atomic.atomic_open(path, "wb") as fh:
        torch.save(model.state_dict(), fh)
    tok = EncodecTokenizer(EncodecConfig(checkpoint=str(path), bandwidth=6.0))
    return _codec(tok, "encodec24k", "causal convolutions + LSTM", RANDOM, "EnCodec 24 kHz @ 6 kbps, released size")


def _dac(fit_waves: Sequence[np.ndarray], opts: CardOptions) -> CardTokenizer:
    # lazy: dac (with torchaudio) takes seconds to import; only this codec needs it; torch takes seconds to import
    import dac
    import torch

    # lazy: brings torch, which only this path needs (`speechtok --help` imports this module)
    from speechtok.tokenizers.acoustic.dac_codec import RELEASED_KWARGS, DacConfig, DacTokenizer

    torch.manual_seed(0)
    model = dac.DAC(**RELEASED_KWARGS["16khz"])
    path = _random_dir(opts) / "weights_16khz.pth"
    model.save(str(path), package=False)
    tok = DacTokenizer(DacConfig(model="16khz", checkpoint=str(path)))
    return _codec(tok, "dac16k", "non-causal", RANDOM, "DAC 16 kHz, 12 codebooks, released size")


def _hf(kind: str) -> Callable[[Sequence[np.ndarray], CardOptions], CardTokenizer]:
    def build(fit_waves: Sequence[np.ndarray], opts: CardOptions) -> CardTokenizer:
        # lazy: brings torch, which only this path needs (`speechtok --help` imports this module)
        from speechtok.tokenizers.acoustic.mimi_codec import MimiCodecConfig
        from speechtok.tokenizers.acoustic.xcodec_codec import XcodecCodecConfig

        d = save_random_model(kind, _random_dir(opts) / kind, size="released")  # type: ignore[arg-type]
        if kind == "mimi":
            tok = build_tokenizer(MimiCodecConfig(model_dir=str(d), n_codebooks=8))
            return _codec(tok, "mimi", "causal, streaming", RANDOM, "Mimi, released size, 8 codebooks (Moshi's)")
        tok = build_tokenizer(XcodecCodecConfig(model_dir=str(d)))
        return _codec(tok, "xcodec", "non-causal", RANDOM, "X-Codec (HuBERT base + DAC), released size")

    return build


BUILDERS: dict[str, Callable[[Sequence[np.ndarray], CardOptions], CardTokenizer]] = {
    "kmeans-whisper": _kmeans_whisper, "kmeans-fbank": _kmeans_fbank, "dmel": _dmel, "lyra": _lyra,
    "encodec24k": _encodec, "dac16k": _dac, "mimi": _hf("mimi"), "xcodec": _hf("xcodec"),
}
NAMES = tuple(BUILDERS)
#: Tokenizers whose card uses real (or weight-free, corpus-fitted) models here.
REAL_HERE = ("kmeans-whisper", "kmeans-fbank", "dmel", "lyra")
#: Tokenizers drawn with random weights at their released sizes (speed only).
RANDOM_HERE = ("encodec24k", "dac16k", "mimi", "xcodec")


def build_card_tokenizer(name: str, fit_waves: Sequence[np.ndarray], opts: CardOptions) -> CardTokenizer:
    """The adapter for tokenizer `name`; `fit_waves` (16 kHz) fit k-means / dMel ranges."""
    if name not in BUILDERS:
        raise ConfigError("name", name, f"must be one of {', '.join(NAMES)}")
    if name in RANDOM_HERE and opts.work_dir is None:
        # the random-weight model files are read once at construction; do not leave them behind
        with tempfile.TemporaryDirectory(prefix="speechtok-cards-") as tmp:
            return BUILDERS[name](fit_waves, replace(opts, work_dir=tmp))
    return BUILDERS[name](fit_waves, opts)
