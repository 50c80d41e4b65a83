"""Layer features of self-supervised speech models (HuBERT, WavLM, wav2vec2, data2vec-audio)
through `transformers`, batched exactly, stopping the forward pass at the deepest layer asked for.

Layer numbering is transformers' ``hidden_states`` index: layer 0 is the input of the first
transformer layer, layer ``k`` the output of transformer layer ``k`` (fairseq's
``output_layer=k``); the last layer is ``last_hidden_state`` (for pre-norm "stable layer norm"
models, after the encoder's final layer norm, as in transformers). Layers past the deepest one
asked for are never computed: a forward pre-hook on the next transformer layer records its input
and stops the pass.

Exactness (see `speechtok.features.batching`): models with a group-norm feature encoder
(``feat_extract_norm="group"``: HuBERT-base, wav2vec2-base) normalise over time, so padding
would change their outputs; they are batched only over signals of exactly equal length. Layer-norm
models of the HuBERT, wav2vec2 and WavLM families mask padding correctly and are batched over
length-sorted signals with an attention mask. data2vec-audio's stacked positional convolutions
(with layer norms) leak padding into valid frames, so it is bucketed by exact length too.
Long signals are chunked with overlap (`SSLConfig.chunk_seconds`, `overlap_seconds`).

``backend: fairseq2`` loads wav2vec 2.0 / w2v-BERT 2.0 models through fairseq2's own loaders from
a local asset card and checkpoint instead (`speechtok.features.ssl_fairseq2`): same layer
numbering, output, frame rate, batching and chunking.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from speechtok.errors import BugError, ConfigError, InputError
from speechtok.features.batching import chunk_spans, exact_length_buckets, padded_buckets
from speechtok.features.checksum import model_checksum
from speechtok.features.ssl_fairseq2 import Fairseq2SSLEncoder
from speechtok.hub import resolve_model

#: transformers model_type -> class name of the bare encoder model.
SSL_MODEL_CLASSES = {
    "hubert": "HubertModel",
    "wavlm": "WavLMModel",
    "wav2vec2": "Wav2Vec2Model",
    "data2vec-audio": "Data2VecAudioModel",
}
#: Model types whose attention mask makes padded batches equal to one-by-one runs.
_MASK_EXACT = ("hubert", "wav2vec2", "wavlm")
#: Libraries that load the model (see the module docstring).
SSL_BACKENDS = ("transformers", "fairseq2")


@dataclass(frozen=True, kw_only=True)
class SSLConfig:
    """Options of SSL layer-feature extraction.

    Attributes:
        model: a local `transformers` model directory (checked first) or a hub id (read from
            the Hugging Face cache; downloaded only with ``--allow-download``, see `speechtok.hub`);
            with ``backend: fairseq2``, a local fairseq2 asset card (a YAML file or a directory
            holding one) naming a local checkpoint (`speechtok.features.ssl_fairseq2`).
        backend: ``"transformers"`` (default) or ``"fairseq2"``.
        layers: hidden-state indices to return (0 .. num_hidden_layers), one or several.
        device: ``"cpu"`` or ``"cuda"``.
        normalize: zero-mean unit-variance input per signal; None reads ``do_normalize`` from
            the model's ``preprocessor_config.json``, else uses ``feat_extract_norm == "layer"``
            (fairseq2: ``feature_extractor_layer_norm_convs``; never for w2v-BERT's fbank input).
        batching: ``"auto"`` (mask where exact, else exact-length buckets), ``"exact"``
            (exact-length buckets always) or ``"mask"`` (padded + attention mask; only for
            models in `_MASK_EXACT` with a layer-norm feature encoder).
        max_batch_seconds: padded audio per forward pass (bounds memory).
        chunk_seconds: signals longer than this are chunked; None never chunks.
        overlap_seconds: context on each side of a chunk's core.
        dtype: output dtype, ``"float16"`` (default) or ``"float32"``.
    """

    model: str
    backend: str = "transformers"
    layers: tuple[int, ...] = (6,)
    device: str = "cpu"
    normalize: bool | None = None
    batching: str = "auto"
    max_batch_seconds: float = 160.0
    chunk_seconds: float | None = 60.0
    overlap_seconds: float = 2.0
    dtype: str = "float16"

    def validate(self) -> None:
        if not self.model:
            raise ConfigError("model", self.model, "must name a model directory or hub id")
        if self.backend not in SSL_BACKENDS:
            raise ConfigError("backend", self.backend, f"must be one of {list(SSL_BACKENDS)}")
        if not self.layers:
            raise ConfigError("layers", self.layers, "must name at least one layer")
        if any(int(k) < 0 for k in self.layers) or len(set(self.layers)) != len(self.layers):
            raise ConfigError("layers", self.layers, "must be distinct integers >= 0")
        if self.batching not in ("auto", "exact", "mask"):
            raise ConfigError("batching", self.batching, "must be 'auto', 'exact' or 'mask'")
        if self.max_batch_seconds <= 0:
            raise ConfigError("max_batch_seconds", self.max_batch_seconds, "must be > 0")
        if self.chunk_seconds is not None and self.chunk_seconds < 1.0:
            raise ConfigError("chunk_seconds", self.chunk_seconds, "must be >= 1 second or None")
        if self.overlap_seconds < 0.05:
            raise ConfigError("overlap_seconds", self.overlap_seconds, "must be >= 0.05 s (the receptive field)")
        if self.dtype not in ("float16", "float32"):
            raise ConfigError("dtype", self.dtype, "must be 'float16' or 'float32'")
        if self.device.split(":")[0] not in ("cpu", "cuda"):
            raise ConfigError("device", self.device, "must be 'cpu' or 'cuda'")


class _Stop(Exception):
    """Raised by a forward pre-hook once every requested layer is recorded."""


def load_ssl_model(model: str, device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """Loads the bare encoder of a HuBERT / WavLM / wav2vec2 / data2vec-audio checkpoint.

    Returns:
        ``(model in eval mode on device, info)``; info holds ``model_type``, ``do_normalize``
        (from ``preprocessor_config.json`` or None), ``sampling_rate``, ``local_dir`` (always a local directory: see
        `speechtok.hub.resolve_model`) and ``revision`` (the pinned hub commit, or None).
    """
    # lazy: transformers only on this path
    import transformers

    resolved = resolve_model(model)  # local dir, or the cached hub snapshot (offline by default)
    local, source = resolved.path, str(resolved.path)
    try:
        config = transformers.AutoConfig.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise InputError(model, f"not a loadable model directory ({exc}); "
                         "pass a directory holding config.json and the weights") from exc
    cls_name = SSL_MODEL_CLASSES.get(config.model_type)
    if cls_name is None:
        raise InputError(model, f"model_type {config.model_type!r} is not an SSL speech encoder; "
                         f"supported: {sorted(SSL_MODEL_CLASSES)}")
    cls = getattr(transformers, cls_name)
    net = cls.from_pretrained(source, local_files_only=True).to(device).eval()
    info: dict[str, Any] = {"model_type": config.model_type, "do_normalize": None,
                            "sampling_rate": 16000, "local_dir": source, "revision": resolved.revision}
    pre = local / "preprocessor_config.json"
    if pre.exists():
        p = json.loads(pre.read_text())
        info["do_normalize"] = p.get("do_normalize")
        info["sampling_rate"] = int(p.get("sampling_rate", 16000))
    return net, info


@dataclass
class _Item:
    wave: int  # index of the signal
    start: int  # samples [start, stop) of the (normalised) signal
    stop: int
    keep: slice  # frames of this item's output to keep
    frames: list[dict[int, torch.Tensor]] = field(default_factory=list)


class SSLFeatureExtractor:
    """Layer features of an SSL speech model, batched exactly (see module docstring).

    Args:
        model: local model directory or hub id.
        layers: hidden-state indices, e.g. ``(6,)`` or ``(6, 9, 12)``.
        device: ``"cpu"`` or ``"cuda"``.
        **options: the other `SSLConfig` fields.
    """

    def __init__(self, model: str | SSLConfig, layers: Sequence[int] = (6,), device: str = "cpu",
                 **options: Any) -> None:
        """`model`: an `SSLConfig` (taken as it is), or a model directory / hub id with the other
        `SSLConfig` fields as arguments."""
        self.cfg = model if isinstance(model, SSLConfig) else \
            SSLConfig(model=str(model), layers=tuple(int(k) for k in layers), device=device, **options)
        self.cfg.validate()
        self.model: Any = None  # a transformers PreTrainedModel or a fairseq2 model (typed loosely)
        self.fs2: Fairseq2SSLEncoder | None = None
        self.info: dict[str, Any]
        self.conv: list[tuple[int, int]]  # (kernel, stride) in samples of each framing step
        if self.cfg.backend == "fairseq2":
            self.fs2 = Fairseq2SSLEncoder(self.cfg.model, self.cfg.device)
            self.model = self.fs2.net
            self.info = {"model_type": self.fs2.model_type, "do_normalize": None, "sampling_rate": 16000,
                         "local_dir": None, "revision": None}
            self.num_layers, self.dim, self.conv = self.fs2.num_layers, self.fs2.dim, self.fs2.conv
            feat_norm = "layer" if self.fs2.maskable else "group"
            default_norm, maskable = self.fs2.normalize_default, self.fs2.maskable
        else:
            self.model, self.info = load_ssl_model(self.cfg.model, self.cfg.device)
            conf: Any = self.model.config
            self.num_layers, self.dim = int(conf.num_hidden_layers), int(conf.hidden_size)
            self.conv = [(int(k), int(s)) for k, s in zip(conf.conv_kernel, conf.conv_stride, strict=True)]
            feat_norm = getattr(conf, "feat_extract_norm", "layer")  # data2vec-audio: always layer norm
            default_norm = self.info["do_normalize"]
            default_norm = feat_norm == "layer" if default_norm is None else bool(default_norm)
            maskable = self.info["model_type"] in _MASK_EXACT and feat_norm == "layer"
        bad = [k for k in self.cfg.layers if k > self.num_layers]
        if bad:
            raise ConfigError("layers", self.cfg.layers, f"must be <= num_hidden_layers ({self.num_layers})")
        self.sampling_rate = int(self.info["sampling_rate"])
        self.hop = int(np.prod([s for _k, s in self.conv]))
        self.normalize = default_norm if self.cfg.normalize is None else bool(self.cfg.normalize)
        if self.cfg.batching == "mask" and not maskable:
            raise ConfigError("batching", "mask", f"is not exact for a {self.info['model_type']} model with "
                              f"a {feat_norm}-norm feature encoder; use 'exact' or 'auto'")
        self.use_mask = maskable and self.cfg.batching != "exact"
        self._checksum: str | None = None

    @property
    def frame_rate(self) -> float:
        """Output frames per second (50 for wav2vec2-style encoders at 16 kHz)."""
        return self.sampling_rate / self.hop

    def num_frames(self, num_samples: int) -> int:
        """Output frames for a signal of `num_samples` samples (0 if shorter than the receptive field)."""
        n = int(num_samples)
        for k, s in self.conv:
            n = (n - k) // s + 1 if n >= k else 0
        return max(n, 0)

    def model_checksum(self) -> str | None:
        """sha256 over the model's weight files (see `speechtok.features.checksum`); with the
        fairseq2 backend, over its asset card and checkpoint."""
        if self._checksum is None and self.fs2 is not None:
            self._checksum = self.fs2.checksum()
        if self._checksum is None and self.info["local_dir"]:
            self._checksum = model_checksum(self.info["local_dir"])
        return self._checksum

    def group_meta_fields(self, layer: int | None = None) -> dict[str, Any]:
        """What a stage puts in `GroupMeta` for one layer's features group."""
        return {"frame_rate": self.frame_rate, "dim": self.dim, "dtype": self.cfg.dtype,
                "model_checksum": self.model_checksum()}

    def describe(self) -> dict[str, Any]:
        """Provenance for a stage config: options, model type, layers, frame rate, batching."""
        return {**asdict(self.cfg), "layers": list(self.cfg.layers), "model_type": self.info["model_type"],
                "frame_rate": self.frame_rate, "dim": self.dim, "normalize": self.normalize,
                "batching": "mask" if self.use_mask else "exact", "model_checksum": self.model_checksum(),
                "revision": self.info.get("revision")}

    def _forward(self, x: torch.Tensor, lengths: list[int]) -> dict[int, torch.Tensor]:
        """(B, S) float32 zero-padded, `lengths` valid samples per row -> {layer: (B, T, D) float32},
        stopping early (an attention mask when `use_mask`)."""
        if self.fs2 is not None:
            return self.fs2.forward(x, lengths, self.cfg.layers)
        mask = None
        if self.use_mask:
            mask = torch.zeros(x.shape, dtype=torch.long, device=x.device)  # (B, S)
            for row, n in enumerate(lengths):
                mask[row, :n] = 1
        wanted = sorted(self.cfg.layers)
        deepest = wanted[-1]
        got: dict[int, torch.Tensor] = {}
        layers: Any = self.model.encoder.layers
        handles = []

        def make_hook(k: int) -> Any:
            def hook(_mod: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
                got[k] = args[0] if args else kwargs["hidden_states"]
                if k == deepest:
                    raise _Stop

            return hook

        for k in wanted:
            if k < self.num_layers:
                handles.append(layers[k].register_forward_pre_hook(make_hook(k), with_kwargs=True))
        try:
            out = self.model(x, attention_mask=mask)
            got[self.num_layers] = out.last_hidden_state
        except _Stop:
            pass
        finally:
            for h in handles:
                h.remove()
        return {k: got[k] for k in wanted}

    def _prepare(self, waves: Sequence[np.ndarray], sr: int) -> tuple[list[torch.Tensor], list[_Item], list[int]]:
        if sr != self.sampling_rate:
            raise InputError("waves", f"sampling rate is {sr} Hz but the model expects {self.sampling_rate} Hz; "
                             "resample first (lhotse `CutSet.resample`).")
        signals, items, counts = [], [], []
        chunk = None if self.cfg.chunk_seconds is None else int(self.cfg.chunk_seconds * sr)
        overlap = int(self.cfg.overlap_seconds * sr)
        for i, w in enumerate(waves):
            arr = np.asarray(w, dtype=np.float32)
            if arr.ndim != 1:
                raise InputError(f"signal {i}", f"must be 1-D (S,), but has shape {arr.shape}")
            if self.normalize and arr.size:
                arr = (arr - arr.mean()) / np.sqrt(arr.var() + 1e-7)  # transformers' zero_mean_unit_var_norm
            signals.append(torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)))
            t = self.num_frames(arr.size)
            counts.append(t)
            if t == 0:
                continue
            if chunk is None or arr.size <= chunk:
                items.append(_Item(i, 0, arr.size, slice(0, t)))
                continue
            for sp in chunk_spans(arr.size, t, chunk=chunk, overlap=overlap, hop=self.hop):
                items.append(_Item(i, sp.start, sp.stop, slice(sp.keep_from, sp.keep_to)))
        return signals, items, counts

    @torch.inference_mode()
    def extract_batch(self, waves: Sequence[np.ndarray], sr: int = 16000) -> dict[int, list[np.ndarray]]:
        """Layer features of each signal; equal to extracting each signal alone (see module doc).

        Args:
            waves: float signals (S_i,) in [-1, 1] at `sr` Hz.
            sr: their sampling rate; must be the model's (16 kHz).

        Returns:
            ``{layer: [array (T_i, D) of cfg.dtype (float16 by default), one per signal]}`` with
            ``T_i = num_frames(S_i)`` (50 frames/s); 0 frames for signals under 400 samples.
        """
        signals, items, counts = self._prepare(waves, sr)
        lengths = [it.stop - it.start for it in items]
        budget = int(self.cfg.max_batch_seconds * self.sampling_rate)
        batches = padded_buckets(lengths, budget) if self.use_mask else exact_length_buckets(lengths, budget)
        dev = torch.device(self.cfg.device)
        for batch in batches:
            longest = max(lengths[j] for j in batch)
            x = torch.zeros((len(batch), longest), dtype=torch.float32)  # (B, S) zero-padded
            for row, j in enumerate(batch):
                it = items[j]
                x[row, : lengths[j]] = signals[it.wave][it.start : it.stop]
            feats = self._forward(x.to(dev), [lengths[j] for j in batch])  # {k: (B, T, D)}
            for row, j in enumerate(batch):
                it = items[j]
                t = self.num_frames(lengths[j])
                if it.keep.stop > t:
                    raise BugError(f"chunk of {lengths[j]} samples gave {t} frames < {it.keep.stop}")
                it.frames.append({k: v[row, :t][it.keep].float().cpu() for k, v in feats.items()})
        out_dtype = np.float16 if self.cfg.dtype == "float16" else np.float32
        result: dict[int, list[np.ndarray]] = {k: [] for k in self.cfg.layers}
        by_wave: dict[int, list[_Item]] = {}
        for it in items:
            by_wave.setdefault(it.wave, []).append(it)
        for i, t in enumerate(counts):
            parts = by_wave.get(i, [])
            for k in self.cfg.layers:
                if not parts:
                    result[k].append(np.zeros((0, self.dim), dtype=out_dtype))
                    continue
                arr = torch.cat([p.frames[0][k] for p in parts]).numpy().astype(out_dtype)
                if arr.shape[0] != t:
                    raise BugError(f"signal {i}: stitched {arr.shape[0]} frames, expected {t}")
                result[k].append(arr)
        return result

    def extract(self, wave: np.ndarray, sr: int = 16000) -> dict[int, np.ndarray]:
        """Layer features of one signal: ``{layer: (T, D)}``."""
        return {k: v[0] for k, v in self.extract_batch([wave], sr).items()}
