"""EnCodec codes through the `encodec` package (24 kHz mono causal; 48 kHz stereo non-causal).

Weights: a local state-dict file as the package's released checkpoints are
(``encodec_24khz-d7cc33bc.th``, ``encodec_48khz-7e698e3e.th``; read with
``torch.load(weights_only=True)``; a ``name-<8 hex>`` file name is checked against its sha256
like the package does), or, with ``download=True`` and a network, the released file fetched
into torch hub's cache and then read the same way (the package's own loader would call
``torch.hub.load_state_dict_from_url``, which unpickles with ``weights_only=False``).

24 kHz: exact-length batches, long cuts in chunks (`chunking.py`).
48 kHz: the model's own segment mechanism (1 s segments, 1 % overlap, each segment normalised
by its RMS `scale`). Every full segment has the same length, so segments of all cuts batch
together; the codes of a cut are its segments' codes concatenated along time
(``150 * (n_seg - 1) + T_last`` frames), and decoding needs the per-segment scales (from
`encode_batch_with_scales`) and the cut's length to undo normalisation and overlap-add.
Mono input goes to both channels; decoded stereo is averaged back to mono.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from speechtok import hub
from speechtok.errors import ConfigError, InputError
from speechtok.features.checksum import file_sha256
from speechtok.tokenizers.acoustic.base import (
    CodecBase,
    CodecInfo,
    check_chunk_batch_limits,
    check_codes,
    check_waves,
    resolve_device,
)
from speechtok.tokenizers.acoustic.batching import run_bucketed
from speechtok.tokenizers.acoustic.torch_common import load_checkpoint, prepare_for_inference

BANDWIDTHS = {"24khz": (1.5, 3.0, 6.0, 12.0, 24.0), "48khz": (3.0, 6.0, 12.0, 24.0)}
_RATES = {"24khz": 24_000, "48khz": 48_000}
_CHECKPOINTS = {"24khz": "encodec_24khz-d7cc33bc.th", "48khz": "encodec_48khz-7e698e3e.th"}


@dataclass(frozen=True, kw_only=True)
class EncodecArch:
    """SEANet/RVQ sizes. Defaults are the released models'; tests shrink them."""

    n_filters: int = 32
    dimension: int = 128
    n_residual_layers: int = 1
    lstm: int = 2
    ratios: tuple[int, ...] = (8, 5, 4, 2)
    bins: int = 1024

    def validate(self) -> None:
        for name in ("n_filters", "dimension", "n_residual_layers", "bins"):
            if getattr(self, name) < 1:
                raise ConfigError(f"arch.{name}", getattr(self, name), "must be >= 1")
        if self.lstm < 0:
            raise ConfigError("arch.lstm", self.lstm, "must be >= 0")
        if not self.ratios or any(r < 1 for r in self.ratios):
            raise ConfigError("arch.ratios", self.ratios, "must be a non-empty tuple of ints >= 1")
        if 2 ** int(math.log2(self.bins)) != self.bins:
            raise ConfigError("arch.bins", self.bins, "must be a power of 2")


@dataclass(frozen=True, kw_only=True)
class EncodecConfig:
    """How to load and run EnCodec.

    Attributes:
        model: ``"24khz"`` (mono, causal) or ``"48khz"`` (stereo, non-causal, normalised).
        bandwidth: kbps; 24khz: 1.5/3/6/12/24 (2/4/8/16/32 codebooks), 48khz: 3/6/12/24.
        checkpoint: local state-dict file; None with ``download=True`` fetches the released one.
        download: allow the package's own download (needs a network).
        arch: architecture sizes (released defaults).
        device: torch device string.
        chunk_s: 24khz only: cuts longer than this are encoded in chunks of this length; 0
            disables chunking.
        context_s: 24khz only: real audio on each side of a chunk, trimmed after encoding.
        max_batch_samples: bound on batch_size * samples per forward (memory).
        max_batch_size: bound on pieces per forward; None: 1 on CPU (measured: batched CPU
            convolutions run slower than a loop, EnCodec 2x slower at B=8, DAC 7 % at B=4),
            32 on CUDA.
    """

    model: Literal["24khz", "48khz"] = "24khz"
    bandwidth: float = 6.0
    checkpoint: str | None = None
    download: bool = False
    arch: EncodecArch = field(default_factory=EncodecArch)
    device: str = "cpu"
    chunk_s: float = 30.0
    context_s: float = 1.0
    max_batch_samples: int = 24_000 * 120
    max_batch_size: int | None = None

    def validate(self) -> None:
        if self.model not in BANDWIDTHS:
            raise ConfigError("model", self.model, "must be '24khz' or '48khz'")
        if self.bandwidth not in BANDWIDTHS[self.model]:
            raise ConfigError("bandwidth", self.bandwidth, f"must be one of {BANDWIDTHS[self.model]}")
        if self.checkpoint is None and not self.download:
            raise ConfigError(
                "checkpoint", None, f"must be a local state dict (e.g. {_CHECKPOINTS[self.model]}) "
                "unless download=True"
            )
        if self.chunk_s < 0:
            raise ConfigError("chunk_s", self.chunk_s, "must be >= 0 (0 disables chunking)")
        check_chunk_batch_limits(self.context_s, self.max_batch_samples, self.max_batch_size)
        self.arch.validate()


def build_encodec_model(model: str, arch: EncodecArch) -> Any:
    """Builds an untrained `encodec.EncodecModel` with the released layout and `arch` sizes."""
    # lazy: encodec only for this codec
    from encodec import modules as m
    from encodec import quantization as qt
    from encodec.model import EncodecModel

    stereo = model == "48khz"
    channels = 2 if stereo else 1
    norm = "time_group_norm" if stereo else "weight_norm"
    kw: dict[str, Any] = dict(
        channels=channels, dimension=arch.dimension, n_filters=arch.n_filters,
        n_residual_layers=arch.n_residual_layers, ratios=list(arch.ratios), norm=norm,
        causal=not stereo, lstm=arch.lstm,
    )
    encoder, decoder = m.SEANetEncoder(**kw), m.SEANetDecoder(**kw)
    sr = _RATES[model]
    bws = list(BANDWIDTHS[model])
    n_q = int(1000 * bws[-1] // (math.ceil(sr / encoder.hop_length) * 10))
    quantizer = qt.ResidualVectorQuantizer(dimension=arch.dimension, n_q=n_q, bins=arch.bins)
    return EncodecModel(
        encoder, decoder, quantizer, bws, sr, channels, normalize=stereo,
        segment=1.0 if stereo else None, name=f"encodec_{model}",
    )


def randomize_codebooks(model: Any, audio: torch.Tensor, generator: torch.Generator | None = None) -> None:
    """Initialises an untrained EnCodec's RVQ codebooks from its own encoder output.

    The package leaves codebooks at zero until k-means runs on the first training batch, so an
    untrained model emits code 0 everywhere. Random-weight tests and benchmarks call this before
    saving, so that codes vary and exactness checks mean something: codebook q is drawn from the
    residual frames left by codebooks < q on `audio` (B, C, S), plus 10 % noise.
    """
    with torch.no_grad():
        emb = model.encoder(audio)  # (B, D, T)
        x = emb.transpose(1, 2).reshape(-1, emb.shape[1])  # (N, D)
        for layer in model.quantizer.vq.layers:
            book = layer._codebook
            idx = torch.randint(0, len(x), (book.embed.shape[0],), generator=generator)
            noise = torch.randn(book.embed.shape, generator=generator)
            book.embed.copy_(x[idx] + 0.1 * x.std() * noise)
            book.embed_avg.copy_(book.embed)
            book.cluster_size.fill_(1.0)
            book.inited.fill_(1.0)
            x = x - book.embed[torch.cdist(x, book.embed).argmin(dim=1)]


def _download(model: str) -> Path:
    """The released checkpoint in torch hub's cache, fetched once (needs a network)."""
    # lazy: encodec (with torchaudio) takes seconds to import; only this codec needs it
    from encodec.model import ROOT_URL
    from encodec.utils import _get_checkpoint_url

    name = _CHECKPOINTS[model]
    dst = Path(torch.hub.get_dir()) / "checkpoints" / name
    if not dst.is_file():
        if not hub.downloads_allowed():
            raise InputError(str(dst), "the released EnCodec checkpoint is not cached and downloads are off; "
                             "pass `checkpoint` (a local file) or --allow-download")
        dst.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(_get_checkpoint_url(ROOT_URL, name), str(dst))
    return dst


def _load_state(cfg: EncodecConfig) -> tuple[dict[str, torch.Tensor], str]:
    # the package's own loader calls torch.hub.load_state_dict_from_url (weights_only=False):
    # download the same file, then read it like a local one
    path = Path(cfg.checkpoint) if cfg.checkpoint is not None else _download(cfg.model)
    digest = file_sha256(path) if path.is_file() else ""
    m = re.fullmatch(r".*-([0-9a-f]{8})", path.stem)
    if m and not digest.startswith(m.group(1)):
        raise InputError(str(path), f"sha256 starts with {digest[:8]}, not {m.group(1)} (corrupt?)")
    state = load_checkpoint(path)
    if not isinstance(state, dict):
        raise InputError(str(path), f"must hold a state dict, but holds {type(state).__name__}")
    return state, digest


class EncodecTokenizer(CodecBase):
    """EnCodec encode/decode with exact batching (see module docstring)."""

    CUDA_BATCH = 32

    def __init__(self, cfg: EncodecConfig) -> None:
        cfg.validate()
        self.config = cfg
        self.device = resolve_device(cfg.device)
        model = build_encodec_model(cfg.model, cfg.arch)
        state, self._checksum = _load_state(cfg)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise InputError(str(cfg.checkpoint), f"does not fit EnCodec {cfg.model} {cfg.arch}: {e}") from e
        model.set_target_bandwidth(cfg.bandwidth)
        self.model: Any = prepare_for_inference(model, self.device)
        hop = int(np.prod(cfg.arch.ratios))
        self._n_q = int(model.quantizer.get_num_quantizers_for_bandwidth(model.frame_rate, cfg.bandwidth))
        self._info = CodecInfo(
            name=f"encodec_{cfg.model}", sample_rate=model.sample_rate, hop_length=hop,
            frame_rate=model.sample_rate / hop, num_codebooks=self._n_q, codebook_size=cfg.arch.bins,
        )

    # ---- encoding -------------------------------------------------------------------------
    def _encode_24k(self, x: np.ndarray) -> list[np.ndarray]:
        # x: (B, 1, S) float32 -> B x (T, Q) int64
        with torch.inference_mode():
            xt = torch.from_numpy(x).to(self.device)
            emb = self.model.encoder(xt)  # (B, D, T)
            codes = self.model.quantizer.encode(emb, self.model.frame_rate, self.config.bandwidth)
            return list(codes.permute(1, 2, 0).cpu().numpy())  # (K, B, T) -> (B, T, K)

    def _encode_48k(self, x: np.ndarray) -> list[tuple[np.ndarray, float]]:
        # x: (B, 2, S) -> per row ((T, Q) int64, scale)
        with torch.inference_mode():
            codes, scale = self.model._encode_frame(torch.from_numpy(x).to(self.device))
            c = codes.permute(0, 2, 1).cpu().numpy()  # (B, K, T) -> (B, T, K)
            s = scale.view(-1).cpu().numpy()
            return [(c[i], float(s[i])) for i in range(x.shape[0])]

    def encode_batch(self, waves: Sequence[np.ndarray], sr: int) -> list[np.ndarray]:
        """float32 (S_i,) mono waves at `sr` -> uint16 (ceil(S_i / hop), Q) codes each (24khz);
        48khz: (sum over 1 s segments, Q). Identical to encoding each wave alone."""
        return [c for c, _ in self.encode_batch_with_scales(waves, sr)]

    def encode_batch_with_scales(
        self, waves: Sequence[np.ndarray], sr: int
    ) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Like `encode_batch`, plus per-segment scales: float32 (n_seg,) for 48khz, else None."""
        ws = check_waves(waves, sr, self._info.sample_rate)
        if self.config.model == "48khz":
            return self._encode_batch_48k(ws)
        return [(c, None) for c in self._encode_chunked(ws, self._encode_24k)]

    def _segments(self, num_samples: int) -> list[tuple[int, int]]:
        seg, stride = int(self.model.segment_length), int(self.model.segment_stride)
        return [(o, min(o + seg, num_samples)) for o in range(0, num_samples, stride)]

    def _encode_batch_48k(self, ws: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        pieces: list[np.ndarray] = []
        counts: list[int] = []
        for w in ws:
            segs = self._segments(len(w))
            counts.append(len(segs))
            pieces.extend(np.stack([w[a:b], w[a:b]]) for a, b in segs)  # (2, S_seg)
        outs = run_bucketed(
            pieces, self._encode_48k,
            max_batch_samples=self.config.max_batch_samples, max_batch_size=self._batch_size,
        )
        result: list[tuple[np.ndarray, np.ndarray | None]] = []
        k = 0
        for n in counts:
            part = outs[k : k + n]
            k += n
            codes = np.concatenate([c for c, _ in part]).astype(np.uint16)
            result.append((codes, np.array([s for _, s in part], dtype=np.float32)))
        return result

    # ---- decoding -------------------------------------------------------------------------
    def _decode_frames(self, codes: np.ndarray, scale: float | None = None) -> torch.Tensor:
        # codes (T, Q) int64 -> audio (1, C, T * hop)
        c = torch.from_numpy(np.ascontiguousarray(codes.T[:, None, :])).to(self.device)  # (Q, 1, T)
        emb = self.model.quantizer.decode(c)
        out = self.model.decoder(emb)
        return out * scale if scale is not None else out

    def decode(
        self, codes: np.ndarray, num_samples: int | None = None, scales: np.ndarray | None = None
    ) -> np.ndarray:
        """uint16 (T, Q) codes -> float32 (S,) mono audio at info.sample_rate.

        Args:
            codes: one cut's codes.
            num_samples: trim to this length; 48khz: the cut's length, which fixes its segments
                (without it, all segments but the last are taken as full 1 s ones).
            scales: 48khz: per-segment scales from `encode_batch_with_scales`; without them the
                output is each segment at unit RMS.
        """
        if self.config.model != "48khz":
            return self._decode_chunked(codes, num_samples, self._decode_24k)
        with torch.inference_mode():
            audio = self._decode_48k(check_codes(codes, self._info), num_samples, scales)
        return audio[:num_samples].astype(np.float32) if num_samples else audio.astype(np.float32)

    @torch.inference_mode()
    def _decode_24k(self, c: np.ndarray) -> np.ndarray:
        # c: (t, Q) int64 -> (t * hop,) float32
        return self._decode_frames(c)[0, 0].cpu().numpy()

    def _decode_48k(
        self, c: np.ndarray, num_samples: int | None, scales: np.ndarray | None
    ) -> np.ndarray:
        # lazy: encodec (with torchaudio) takes seconds to import; only this codec needs it
        from encodec.utils import _linear_overlap_add

        hop = self._info.hop_length
        per_seg = -(-self.model.segment_length // hop)
        if num_samples is not None:
            counts = [-(-(b - a) // hop) for a, b in self._segments(num_samples)]
        else:
            counts = [per_seg] * (len(c) // per_seg) + ([len(c) % per_seg] if len(c) % per_seg else [])
        if sum(counts) != len(c):
            raise InputError("codes", f"has {len(c)} frames, but num_samples={num_samples} needs {sum(counts)}")
        if scales is not None and len(scales) != len(counts):
            raise InputError("scales", f"has {len(scales)} entries, but the codes have {len(counts)} segments")
        frames, k = [], 0
        for j, n in enumerate(counts):
            s = None if scales is None else float(scales[j])
            frames.append(self._decode_frames(c[k : k + n], s))
            k += n
        out = _linear_overlap_add(frames, self.model.segment_stride)  # (1, 2, S)
        return out[0].mean(0).cpu().numpy()
