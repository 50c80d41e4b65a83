"""Acoustic tokenizers: neural-codec codes (EnCodec, DAC, Lyra v2, Mimi, X-Codec), exact batching, chunking of
long audio, resynthesis and reconstruction metrics.

    tok = build_tokenizer(EncodecConfig(model="24khz", bandwidth=6.0, checkpoint="enc.th"))
    codes = tok.encode_batch(waves, sr=24000)   # list of uint16 (T, Q)
    audio = tok.decode(codes[0], num_samples=len(waves[0]))   # float32 (S,)

Codec imports are lazy: importing this package does not import torch, encodec, dac or litert.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from speechtok.errors import ConfigError
from speechtok.tokenizers.acoustic.base import AcousticTokenizer, CodecInfo
from speechtok.tokenizers.acoustic.lyra_codec import LyraConfig, LyraTokenizer

if TYPE_CHECKING:
    from speechtok.tokenizers.acoustic.dac_codec import DacConfig
    from speechtok.tokenizers.acoustic.encodec_codec import EncodecConfig
    from speechtok.tokenizers.acoustic.mimi_codec import MimiCodecConfig
    from speechtok.tokenizers.acoustic.xcodec_codec import XcodecCodecConfig

__all__ = ["AcousticTokenizer", "CodecInfo", "build_tokenizer"]


def build_tokenizer(
    cfg: EncodecConfig | DacConfig | LyraConfig | MimiCodecConfig | XcodecCodecConfig,
) -> Any:
    """The tokenizer for a codec config (Encodec-, Dac-, Lyra-, Mimi- or XcodecTokenizer)."""
    # lazy: brings torch, which only this path needs
    from speechtok.tokenizers.acoustic.dac_codec import DacConfig, DacTokenizer
    from speechtok.tokenizers.acoustic.encodec_codec import EncodecConfig, EncodecTokenizer
    from speechtok.tokenizers.acoustic.mimi_codec import MimiCodecConfig, MimiTokenizer
    from speechtok.tokenizers.acoustic.xcodec_codec import XcodecCodecConfig, XcodecTokenizer

    pairs: list[tuple[type, Any]] = [(EncodecConfig, EncodecTokenizer), (DacConfig, DacTokenizer),
                                     (LyraConfig, LyraTokenizer), (MimiCodecConfig, MimiTokenizer),
                                     (XcodecCodecConfig, XcodecTokenizer)]
    for config_cls, tokenizer_cls in pairs:
        if isinstance(cfg, config_cls):
            return tokenizer_cls(cfg)
    raise ConfigError("cfg", type(cfg).__name__, "must be an EncodecConfig, DacConfig, LyraConfig, "
                      "MimiCodecConfig or XcodecCodecConfig")
