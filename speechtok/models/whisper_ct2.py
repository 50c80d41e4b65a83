"""A CTranslate2 Whisper directory read into a torch `transformers.WhisperForConditionalGeneration`.

CTranslate2 stores a model as one ``model.bin`` (binary version 6, written by
`ctranslate2.specs.ModelSpec._serialize`; no pickle):

    uint32 version | str spec_name | uint32 revision | uint32 n_variables
    n_variables x (str name | uint8 ndim | ndim x uint32 dim | uint8 dtype_id | uint32 nbytes | bytes)
    uint32 n_aliases | n_aliases x (str alias | str target)

where ``str`` is ``uint16 length (with the trailing NUL) | utf-8 bytes | NUL`` and dtype ids are
0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16 (all little-endian). Int8 weights come
with a ``weight_scale`` (one per output row) and are dequantised as ``weight / scale``.

The Whisper converter (`ctranslate2.converters.TransformersConverter`) fuses attention
projections: self-attention ``linear_0`` = [q; k; v] (k has no bias in Whisper: its slice of the
bias is zero), cross-attention ``linear_0`` = q and ``linear_1`` = [k; v]; the last linear is
``out_proj``. `load_whisper_ct2` undoes exactly that, so the torch model computes what
CTranslate2 computes (checked on real speech by `tests/models/test_whisper_ct2.py` and
`bench/bench_whisper_torch.py`).
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechtok.errors import InputError

_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, None)  # 5 = bfloat16, handled apart
SUPPORTED_VERSIONS = (5, 6)


def read_ct2_variables(model_bin: Path) -> tuple[str, dict[str, np.ndarray]]:
    """Every variable of a CTranslate2 ``model.bin``, aliases resolved.

    Returns:
        ``(spec_name, {name: array})``; arrays keep their stored dtype (float16 weights stay
        float16; bfloat16 is returned as float32). Scalars are 0-d arrays.

    Raises:
        InputError: the file is not a CTranslate2 model of a supported binary version, or is
            truncated.
    """
    path = Path(model_bin)
    data = path.read_bytes()
    pos = 0

    def take(fmt: str) -> Any:
        nonlocal pos
        size = struct.calcsize(fmt)
        if pos + size > len(data):
            raise InputError(str(path), f"truncated at byte {pos} of {len(data)}; copy the model again")
        (value,) = struct.unpack_from(fmt, data, pos)
        pos += size
        return value

    def text() -> str:
        nonlocal pos
        n = take("<H")
        out = data[pos : pos + n - 1].decode("utf-8")
        pos += n
        return out

    version = take("<I")
    if version not in SUPPORTED_VERSIONS:
        raise InputError(str(path), f"CTranslate2 binary version {version} is not one of {SUPPORTED_VERSIONS}; "
                                    "re-convert the model with ctranslate2 >= 3")
    spec = text()
    take("<I")  # revision
    variables: dict[str, np.ndarray] = {}
    for _ in range(take("<I")):
        name = text()
        shape = tuple(take("<I") for _ in range(take("<B")))
        dtype_id = take("<B")
        nbytes = take("<I")
        if pos + nbytes > len(data):
            raise InputError(str(path), f"variable {name} is truncated; copy the model again")
        raw = data[pos : pos + nbytes]
        pos += nbytes
        if dtype_id == 5:
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        elif 0 <= dtype_id < len(_DTYPES):
            arr = np.frombuffer(raw, dtype=np.dtype(_DTYPES[dtype_id]).newbyteorder("<"))
        else:
            raise InputError(str(path), f"variable {name} has unknown dtype id {dtype_id}")
        variables[name] = arr.reshape(shape)
    for _ in range(take("<I")):
        alias, target = text(), text()
        variables[alias] = variables[target]
    return spec, variables


@dataclass(frozen=True)
class WhisperSpecials:
    """Special token ids of a Whisper vocabulary (from ``tokenizer.json``)."""

    eot: int
    sot: int
    no_timestamps: int
    transcribe: int | None
    english: int | None


def read_specials(model_dir: Path) -> WhisperSpecials:
    """The special token ids named in ``model_dir/tokenizer.json``.

    Raises:
        InputError: the tokenizer file is missing or lacks a required token.
    """
    path = Path(model_dir) / "tokenizer.json"
    if not path.is_file():
        raise InputError(str(path), "missing; a CTranslate2 Whisper directory needs its tokenizer.json")
    added = {t["content"]: int(t["id"]) for t in json.loads(path.read_text())["added_tokens"]}
    for need in ("<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>"):
        if need not in added:
            raise InputError(str(path), f"has no {need} token")
    return WhisperSpecials(eot=added["<|endoftext|>"], sot=added["<|startoftranscript|>"],
                           no_timestamps=added["<|notimestamps|>"], transcribe=added.get("<|transcribe|>"),
                           english=added.get("<|en|>"))


def _weight(var: dict[str, np.ndarray], prefix: str) -> np.ndarray:
    w = var[f"{prefix}/weight"]
    if w.dtype == np.int8:
        scale = var[f"{prefix}/weight_scale"].astype(np.float32)
        return w.astype(np.float32) / scale.reshape(-1, *([1] * (w.ndim - 1)))
    return w.astype(np.float32)


def _count_layers(var: dict[str, np.ndarray], side: str) -> int:
    found = {int(m.group(1)) for k in var if (m := re.match(rf"{side}/layer_(\d+)/", k))}
    return max(found) + 1 if found else 0


def whisper_state_dict(var: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The `WhisperForConditionalGeneration` state dict (float32) of CTranslate2 variables."""
    sd: dict[str, np.ndarray] = {}

    def linear(dst: str, src: str) -> None:
        sd[f"{dst}.weight"] = _weight(var, src)
        if f"{src}/bias" in var:
            sd[f"{dst}.bias"] = var[f"{src}/bias"].astype(np.float32)

    def norm(dst: str, src: str) -> None:
        sd[f"{dst}.weight"] = var[f"{src}/gamma"].astype(np.float32)
        sd[f"{dst}.bias"] = var[f"{src}/beta"].astype(np.float32)

    def split(dst: str, src: str, names: tuple[str, ...]) -> None:
        w = _weight(var, src)
        b = var[f"{src}/bias"].astype(np.float32)
        n = w.shape[0] // len(names)
        for i, name in enumerate(names):
            sd[f"{dst}.{name}.weight"] = w[i * n : (i + 1) * n]
            if name != "k_proj":  # Whisper's k projections have no bias (zero in the fused one)
                sd[f"{dst}.{name}.bias"] = b[i * n : (i + 1) * n]

    for side in ("encoder", "decoder"):
        m = f"model.{side}"
        sd[f"{m}.embed_positions.weight"] = var[f"{side}/position_encodings/encodings"].astype(np.float32)
        norm(f"{m}.layer_norm", f"{side}/layer_norm")
        for i in range(_count_layers(var, side)):
            src, dst = f"{side}/layer_{i}", f"{m}.layers.{i}"
            split(f"{dst}.self_attn", f"{src}/self_attention/linear_0", ("q_proj", "k_proj", "v_proj"))
            linear(f"{dst}.self_attn.out_proj", f"{src}/self_attention/linear_1")
            norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
            if side == "decoder":
                linear(f"{dst}.encoder_attn.q_proj", f"{src}/attention/linear_0")
                split(f"{dst}.encoder_attn", f"{src}/attention/linear_1", ("k_proj", "v_proj"))
                linear(f"{dst}.encoder_attn.out_proj", f"{src}/attention/linear_2")
                norm(f"{dst}.encoder_attn_layer_norm", f"{src}/attention/layer_norm")
            linear(f"{dst}.fc1", f"{src}/ffn/linear_0")
            linear(f"{dst}.fc2", f"{src}/ffn/linear_1")
            norm(f"{dst}.final_layer_norm", f"{src}/ffn/layer_norm")
    linear("model.encoder.conv1", "encoder/conv1")
    linear("model.encoder.conv2", "encoder/conv2")
    sd["model.decoder.embed_tokens.weight"] = _weight(var, "decoder/embeddings")
    sd["proj_out.weight"] = sd["model.decoder.embed_tokens.weight"]
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}


def whisper_config(var: dict[str, np.ndarray], specials: WhisperSpecials, ct2_config: dict[str, Any]) -> Any:
    """The `transformers.WhisperConfig` matching the CTranslate2 variables' shapes."""
    # lazy: transformers only on this path
    from transformers import WhisperConfig

    d_model = int(var["decoder/embeddings/weight"].shape[1])
    return WhisperConfig(
        vocab_size=int(var["decoder/embeddings/weight"].shape[0]),
        num_mel_bins=int(var["encoder/conv1/weight"].shape[1]), d_model=d_model,
        encoder_layers=_count_layers(var, "encoder"), decoder_layers=_count_layers(var, "decoder"),
        encoder_attention_heads=int(var["encoder/num_heads"]), decoder_attention_heads=int(var["decoder/num_heads"]),
        encoder_ffn_dim=int(var["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        decoder_ffn_dim=int(var["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        max_source_positions=int(var["encoder/position_encodings/encodings"].shape[0]),
        max_target_positions=int(var["decoder/position_encodings/encodings"].shape[0]),
        pad_token_id=specials.eot, bos_token_id=specials.eot, eos_token_id=specials.eot,
        decoder_start_token_id=specials.sot, suppress_tokens=list(ct2_config.get("suppress_ids", [])),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin", [])), tie_word_embeddings=True,
    )


def load_whisper_ct2(model_dir: Path | str) -> Any:
    """A float32 `transformers.WhisperForConditionalGeneration` (eval mode) from a CTranslate2
    Whisper directory (``model.bin``, ``config.json``, ``tokenizer.json``).

    Raises:
        InputError: a file is missing, not a Whisper spec, or a variable does not fit the model.
    """
    # lazy: transformers takes seconds to import
    from transformers import WhisperForConditionalGeneration

    model_dir = Path(model_dir)
    if not (model_dir / "model.bin").is_file():
        raise InputError(str(model_dir), "has no model.bin; pass a CTranslate2 Whisper directory")
    spec, var = read_ct2_variables(model_dir / "model.bin")
    if spec != "WhisperSpec":
        raise InputError(str(model_dir / "model.bin"), f"is a {spec}, not a WhisperSpec")
    cfg_path = model_dir / "config.json"
    ct2_config = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
    config = whisper_config(var, read_specials(model_dir), ct2_config)
    model = WhisperForConditionalGeneration(config)
    state = whisper_state_dict(var)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k != "proj_out.weight"]
    if missing or unexpected:
        raise InputError(str(model_dir), f"variables do not fit WhisperForConditionalGeneration: "
                                         f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.tie_weights()
    model.eval()
    return model
