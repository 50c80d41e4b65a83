"""Random-weight Mimi and X-Codec model directories for tests and benchmarks.

The real weights are not reachable here, so tests and the speed benchmark build models from a
config with random weights and ``save_pretrained`` them: the directory has the layout of a
released checkpoint and loads through the same `hf_local` path. Two sizes:

- ``tiny``: a few thousand parameters, for tests (seconds on CPU).
- ``released``: the released architecture sizes (``kyutai/mimi``: 79 M parameters;
  ``hf-audio/xcodec-hubert-librispeech``: HuBERT base + DAC), for speed only.

``transformers`` initialises the codebooks to zeros (they are learned buffers), which would make
every code 0; here they are drawn at random (seeded) so that codes, batching and round trips are
tested on codes that vary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from speechtok import atomic
from speechtok.errors import ConfigError

Size = Literal["tiny", "released"]


def mimi_config(size: Size = "tiny") -> Any:
    """A `MimiConfig`: `tiny` (hidden 32, 8 codebooks of 64) or `released` (kyutai/mimi)."""
    # lazy: transformers only on this path
    from transformers import MimiConfig

    if size == "released":
        return MimiConfig()  # the defaults are kyutai/mimi's sizes
    return MimiConfig(hidden_size=32, num_filters=4, codebook_size=64, codebook_dim=16,
                      num_quantizers=8, vector_quantization_hidden_dimension=16,
                      upsample_groups=32, num_hidden_layers=2, intermediate_size=64,
                      num_attention_heads=2, num_key_value_heads=2,
                      layer_scale_initial_scale=1.0)


def xcodec_config(size: Size = "tiny") -> Any:
    """An `XcodecConfig`: `tiny` (6 codebooks of 64, 2-layer HuBERT) or `released` (HuBERT base)."""
    # lazy: transformers takes seconds to import
    from transformers import HubertConfig, XcodecConfig

    if size == "released":
        return XcodecConfig()  # defaults: hf-audio/xcodec-hubert-librispeech's sizes
    return XcodecConfig(
        target_bandwidths=[0.5, 1.0, 2.0], codebook_size=64,
        acoustic_model_config=dict(encoder_hidden_size=4, downsampling_ratios=[2, 4, 5, 8],
                                   decoder_hidden_size=32, upsampling_ratios=[8, 5, 4, 2],
                                   hidden_size=8),
        semantic_model_config=HubertConfig(hidden_size=16, num_hidden_layers=2,
                                           num_attention_heads=2, intermediate_size=32,
                                           conv_dim=(8,) * 7, num_conv_pos_embeddings=16,
                                           num_conv_pos_embedding_groups=2))


def save_random_model(kind: Literal["mimi", "xcodec"], out_dir: str | Path, *,
                      size: Size = "tiny", seed: int = 0) -> Path:
    """Builds a random-weight `kind` model of `size`, draws its codebooks, saves it to `out_dir`
    with ``save_pretrained`` (config.json + model.safetensors) and returns `out_dir`, a directory of
    its own (replaced whole, atomically: `speechtok.atomic.atomic_dir`)."""
    # lazy: torch takes seconds to import; transformers takes seconds to import
    import torch
    from transformers import MimiModel, XcodecModel

    torch.manual_seed(seed)
    if kind == "mimi":
        model: Any = MimiModel(mimi_config(size))
        scale = 4.0 if size == "tiny" else 1.0
        for name, buf in model.named_buffers():
            if name.endswith("codebook.embed_sum"):
                buf.copy_(torch.randn_like(buf) * scale)
    elif kind == "xcodec":
        model = XcodecModel(xcodec_config(size))
        for name, buf in model.named_buffers():
            if name.endswith("codebook.embed"):
                buf.copy_(torch.randn_like(buf) * 0.5)
    else:
        raise ConfigError("kind", kind, "must be 'mimi' or 'xcodec'")
    out = Path(out_dir)
    with atomic.atomic_dir(out, overwrite=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
    return out
