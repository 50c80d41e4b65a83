"""The ``codec`` stage: neural-codec codes per cut (``codes.NAME``, uint16 (T, Q)).

Wraps `speechtok.tokenizers.acoustic.build_tokenizer` (EnCodec 24/48 kHz, DAC 16/24/44 kHz,
Lyra v2, Mimi and X-Codec through transformers from a local model directory). Cuts are resampled
(lhotse ``cut.resample``) to the codec's rate and encoded in exact
batches (batched codes equal each cut's codes alone). The group metadata holds the frame rate,
``num_codebooks`` (Q), ``vocab_size`` (entries per codebook) and the weights' checksum, which
also enters the fingerprint.

EnCodec 48 kHz normalises each 1 s segment by its RMS ``scale``; the ``codes`` schema has no
side column, so the scales are not stored and decoding the stored codes gives each segment at
unit RMS (level differences between segments are lost; the content is not).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from speechtok.errors import BugError, ConfigError
from speechtok.failures import describe
from speechtok.pipeline.stage import CutItem, Quarantine
from speechtok.pipeline.stages.audio import Result, load_waves
from speechtok.pipeline.stages.base import (
    ModelStageBase,
    run_guarded,
)
from speechtok.tokenizers.acoustic import build_tokenizer
from speechtok.tokenizers.acoustic.lyra_codec import LyraConfig

#: codec name -> (family, model variant).
CODECS = {"encodec24k": ("encodec", "24khz"), "encodec48k": ("encodec", "48khz"),
          "dac16k": ("dac", "16khz"), "dac24k": ("dac", "24khz"), "dac44k": ("dac", "44khz"),
          "lyra": ("lyra", ""), "mimi": ("mimi", ""), "xcodec": ("xcodec", "")}


@dataclass(frozen=True, kw_only=True)
class CodecStageConfig:
    """Options of the codec stage.

    Attributes:
        codec: ``encodec24k``, ``encodec48k``, ``dac16k``, ``dac24k``, ``dac44k``, ``lyra``,
            ``mimi`` or ``xcodec``.
        checkpoint: EnCodec: the released state-dict file (``encodec_24khz-d7cc33bc.th``);
            DAC: a ``.pth`` weights file; Lyra: the folder with the three ``.tflite`` files;
            Mimi / X-Codec: the model directory (config.json + model.safetensors).
        bandwidth: EnCodec kbps (24k: 1.5/3/6/12/24, 48k: 3/6/12/24); None = 6.
        n_codebooks: DAC, Mimi, X-Codec: first Q codebooks (None = all); Lyra: quantizers
            (None = 16).
        device: torch device (EnCodec, DAC); Lyra runs on CPU.
        chunk_s, context_s: EnCodec 24k / DAC / X-Codec: chunking of long cuts; Mimi: seconds
            per streaming step (see their configs).
        max_batch_size: pieces per forward (None: the codec's default, 1 on CPU).
        num_threads: Lyra interpreter threads.
        arch: EnCodec only: non-released architecture sizes (`EncodecArch` fields), e.g. for
            small test models; None = the released sizes.
        allow_download: Mimi / X-Codec: `checkpoint` may be a Hub id fetched over the network.
    """

    codec: str = "encodec24k"
    checkpoint: str = ""
    bandwidth: float | None = None
    n_codebooks: int | None = None
    device: str = "cpu"
    chunk_s: float = 30.0
    context_s: float = 1.0
    max_batch_size: int | None = None
    num_threads: int = 1
    arch: dict[str, Any] | None = None
    allow_download: bool = False

    def validate(self) -> None:
        if self.arch is not None and not isinstance(self.arch, dict):
            raise ConfigError("arch", self.arch, "must be a mapping of EncodecArch fields")
        if self.codec not in CODECS:
            raise ConfigError("codec", self.codec, f"must be one of {sorted(CODECS)}")
        family = CODECS[self.codec][0]
        if not self.checkpoint:
            raise ConfigError("checkpoint", self.checkpoint, "must name the local weights "
                              "(a file for EnCodec/DAC, the model folder for Lyra, Mimi, X-Codec)")
        if self.bandwidth is not None and family != "encodec":
            raise ConfigError("bandwidth", self.bandwidth, "is an EnCodec option; use "
                              "n_codebooks for DAC, Lyra, Mimi and X-Codec")
        if self.arch is not None and family != "encodec":
            raise ConfigError("arch", self.arch, "is an EnCodec option")
        if self.n_codebooks is not None and family == "encodec":
            raise ConfigError("n_codebooks", self.n_codebooks, "is not an EnCodec option; set "
                              "bandwidth (kbps) instead")
        self.tokenizer_config().validate()

    def tokenizer_config(self) -> Any:
        """The `EncodecConfig` / `DacConfig` / `LyraConfig` this stage config describes."""
        family, variant = CODECS[self.codec]
        if family == "encodec":
            # lazy: brings torch, which only this path needs
            from speechtok.tokenizers.acoustic.encodec_codec import EncodecArch, EncodecConfig

            arch_kw: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                       for k, v in (self.arch or {}).items()}
            try:
                arch = EncodecArch(**arch_kw)
            except TypeError as exc:
                raise ConfigError("arch", self.arch, f"must hold EncodecArch fields ({exc})") from exc
            return EncodecConfig(model=variant,  # type: ignore[arg-type]
                                 bandwidth=6.0 if self.bandwidth is None else float(self.bandwidth),
                                 checkpoint=self.checkpoint, arch=arch, device=self.device,
                                 chunk_s=self.chunk_s, context_s=self.context_s,
                                 max_batch_size=self.max_batch_size)
        # DAC, Mimi and X-Codec take these as they are
        common: dict[str, Any] = {"n_codebooks": self.n_codebooks, "device": self.device, "chunk_s": self.chunk_s,
                                  "context_s": self.context_s, "max_batch_size": self.max_batch_size}
        if family == "dac":
            # lazy: brings torch, which only this path needs
            from speechtok.tokenizers.acoustic.dac_codec import DacConfig

            return DacConfig(model=variant, checkpoint=self.checkpoint, **common)  # type: ignore[arg-type]
        if family == "mimi":
            # lazy: brings torch, which only this path needs
            from speechtok.tokenizers.acoustic.mimi_codec import MimiCodecConfig

            return MimiCodecConfig(model_dir=self.checkpoint, allow_download=self.allow_download, **common)
        if family == "xcodec":
            # lazy: brings torch, which only this path needs
            from speechtok.tokenizers.acoustic.xcodec_codec import XcodecCodecConfig

            return XcodecCodecConfig(model_dir=self.checkpoint, allow_download=self.allow_download, **common)
        return LyraConfig(model_dir=self.checkpoint,
                          num_quantizers=16 if self.n_codebooks is None else self.n_codebooks,
                          num_threads=self.num_threads)


class CodecStage(ModelStageBase[CodecStageConfig]):
    """Codec codes (see module docstring)."""

    type_name: ClassVar[str] = "codec"
    kind = "codes"
    version = "1"
    config_cls: ClassVar[type[Any]] = CodecStageConfig

    def _load(self) -> Any:
        return build_tokenizer(self.config.tokenizer_config())

    def _probe(self, obj: Any) -> dict[str, Any]:
        info = obj.info
        return {"frame_rate": float(info.frame_rate), "num_codebooks": int(info.num_codebooks),
                "vocab_size": int(info.codebook_size), "model_checksum": str(obj.checksum())}

    def empty_row(self, cut_id: str) -> dict[str, Any]:
        return {"id": cut_id, "codes": np.zeros((0, int(self.facts()["num_codebooks"])), np.uint16)}

    def process(self, batch: Sequence[CutItem]) -> list[Result]:
        tok = self.model()
        sr = int(tok.info.sample_rate)
        q = int(tok.info.num_codebooks)
        out, slots, waves = load_waves(batch, sr)
        codes = run_guarded(lambda ws: tok.encode_batch(ws, sr), waves, [batch[s].id for s in slots])
        for slot, c in zip(slots, codes, strict=True):
            row = out[slot]
            if not isinstance(row, dict):
                raise BugError(f"slot {slot} is not a row")
            if isinstance(c, BaseException):
                out[slot] = Quarantine(id=str(row["id"]), reason="model_error", detail=describe(c))
                continue
            arr = np.ascontiguousarray(np.asarray(c, dtype=np.uint16))
            if arr.ndim != 2 or arr.shape[1] != q or arr.shape[0] == 0:
                out[slot] = Quarantine(id=str(row["id"]), reason="model_error",
                                       detail=f"codes of shape {arr.shape}, expected (T>0, {q})")
                continue
            row["codes"] = arr  # (T, Q) uint16
        return out
