"""Tiny random-weight wav2vec 2.0 models saved twice, for transformers and for fairseq2 (an asset
card and a checkpoint in fairseq2's format), with the parameter-name mapping between the two; and
fairseq2 asset cards for tiny w2v-BERT 2.0 models. Tests import it as ``fairseq2_tiny`` (``tests/``
is on ``sys.path`` through its conftest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Tiny wav2vec 2.0 dimensions shared by the transformers and fairseq2 copies (50 frames/s).
TINY_W2V2 = {"model_dim": 32, "layers": 3, "heads": 2, "ffn": 64, "conv_dim": 16, "pos_kernel": 16, "pos_groups": 2}

#: transformers Wav2Vec2Model parameter names -> fairseq2 Wav2Vec2Model names: (regex, replacement,
#: only for "group" (group-norm feature encoder) / "post" (post-norm layers) models, or always).
_HF_TO_FS2 = [
    (r"^feature_extractor\.conv_layers\.(\d+)\.conv\.", r"encoder_frontend.feature_extractor.layers.\1.conv."),
    (r"^feature_extractor\.conv_layers\.0\.layer_norm\.", "encoder_frontend.feature_extractor.layers.0.group_norm.",
     "group"),
    (r"^feature_extractor\.conv_layers\.(\d+)\.layer_norm\.",
     r"encoder_frontend.feature_extractor.layers.\1.layer_norm."),
    (r"^feature_projection\.layer_norm\.", "encoder_frontend.post_extract_layer_norm."),
    (r"^feature_projection\.projection\.", "encoder_frontend.model_dim_proj."),
    (r"^encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original0$",  # weight norm: g
     "encoder_frontend.pos_encoder.conv.weight_g"),
    (r"^encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original1$",  # weight norm: v
     "encoder_frontend.pos_encoder.conv.weight_v"),
    (r"^encoder\.pos_conv_embed\.conv\.(weight_g|weight_v|bias)$", r"encoder_frontend.pos_encoder.conv.\1"),
    (r"^encoder\.layer_norm\.", "encoder_frontend.layer_norm.", "post"),  # post-norm: before the layers
    (r"^encoder\.layer_norm\.", "encoder.layer_norm."),  # pre-norm ("stable"): after the layers
    (r"^encoder\.layers\.(\d+)\.attention\.([qkv])_proj\.", r"encoder.layers.\1.self_attn.\2_proj."),
    (r"^encoder\.layers\.(\d+)\.attention\.out_proj\.", r"encoder.layers.\1.self_attn.output_proj."),
    (r"^encoder\.layers\.(\d+)\.layer_norm\.", r"encoder.layers.\1.self_attn_layer_norm."),
    (r"^encoder\.layers\.(\d+)\.feed_forward\.intermediate_dense\.", r"encoder.layers.\1.ffn.inner_proj."),
    (r"^encoder\.layers\.(\d+)\.feed_forward\.output_dense\.", r"encoder.layers.\1.ffn.output_proj."),
    (r"^encoder\.layers\.(\d+)\.final_layer_norm\.", r"encoder.layers.\1.ffn_layer_norm."),
    (r"^masked_spec_embed$", "masker.temporal_mask_embed"),
]


def hf_wav2vec2_to_fairseq2(state: dict[str, Any], *, group_norm: bool, post_norm: bool) -> dict[str, Any]:
    """A transformers ``Wav2Vec2Model`` state dict renamed to fairseq2's ``Wav2Vec2Model`` names
    (the encoder only: fairseq2's quantizer and projections have no transformers counterpart)."""
    import re

    kinds = {None, *(["group"] if group_norm else []), *(["post"] if post_norm else [])}
    out = {}
    for key, value in state.items():
        for pattern, repl, *only in _HF_TO_FS2:
            if (only[0] if only else None) in kinds and re.search(pattern, key):
                out[re.sub(pattern, repl, key)] = value
                break
        else:
            raise KeyError(f"no fairseq2 name for transformers parameter {key}")
    return out


def fairseq2_card(dst: Path, family: str, arch: str, model_config: dict[str, Any]) -> Path:
    """Writes ``dst/model.yaml``, a fairseq2 asset card naming ``model.pt`` next to it."""
    import yaml

    dst.mkdir(parents=True, exist_ok=True)
    card = {"name": f"tiny_{family}", "model_family": family, "model_arch": arch, "model_config": model_config,
            "checkpoint": "model.pt"}
    (dst / "model.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    return dst


def tiny_wav2vec2_pair(dst: Path, *, group_norm: bool, seed: int = 0) -> tuple[Path, Path]:
    """The same random-weight tiny wav2vec 2.0 twice: a transformers directory (``dst/hf``) and a
    fairseq2 asset card + checkpoint (``dst/fs2``: ``{"model": state_dict}`` in ``model.pt``).
    `group_norm`: the base model's group-norm feature encoder and post-norm layers; else layer-norm
    convolutions and pre-norm layers (large-lv60k, transformers' "stable layer norm")."""
    import torch
    import transformers as tf

    from speechtok.features.ssl_fairseq2 import load_card

    t = TINY_W2V2
    torch.manual_seed(seed)
    hf_cfg = tf.Wav2Vec2Config(hidden_size=t["model_dim"], num_hidden_layers=t["layers"],
                               num_attention_heads=t["heads"], intermediate_size=t["ffn"],
                               conv_dim=(t["conv_dim"],) * 7, num_conv_pos_embeddings=t["pos_kernel"],
                               num_conv_pos_embedding_groups=t["pos_groups"],
                               feat_extract_norm="group" if group_norm else "layer",
                               conv_bias=not group_norm, do_stable_layer_norm=not group_norm)
    hf = tf.Wav2Vec2Model(hf_cfg)
    with torch.no_grad():  # transformers zero-initialises biases and norms; make every weight count
        for p in hf.parameters():
            p.add_(0.05 * torch.randn_like(p))
    hf.save_pretrained(dst / "hf")
    kinds = [(t["conv_dim"], 10, 5)] + [(t["conv_dim"], 3, 2)] * 4 + [(t["conv_dim"], 2, 2)] * 2
    enc = {"model_dim": t["model_dim"], "feature_dim": t["conv_dim"], "num_encoder_layers": t["layers"],
           "num_encoder_attn_heads": t["heads"], "ffn_inner_dim": t["ffn"],
           "feature_extractor_layer_descs": [list(k) for k in kinds],
           "pos_conv_kernel_size": t["pos_kernel"], "num_pos_conv_groups": t["pos_groups"]}
    if not group_norm:
        enc.update(feature_extractor_bias=True, feature_extractor_layer_norm_convs=True,
                   layer_norm_features=False, norm_order="PRE")
    fs2_dir = fairseq2_card(dst / "fs2", "wav2vec2", "base", {"encoder_config": enc, "quantized_dim": 16,
                                                              "final_dim": 16, "num_codebook_entries": 8})
    from fairseq2.models.wav2vec2 import get_wav2vec2_model_hub

    card = load_card(fs2_dir)
    fs2 = get_wav2vec2_model_hub().create_new_model(get_wav2vec2_model_hub().get_model_config(card))
    state = fs2.state_dict()
    mapped = hf_wav2vec2_to_fairseq2(hf.state_dict(), group_norm=group_norm, post_norm=group_norm)
    for key, value in mapped.items():
        if key not in state or state[key].shape != value.shape:
            raise KeyError(f"{key} {tuple(value.shape)} does not fit fairseq2's model")
        state[key] = value
    torch.save({"model": state}, fs2_dir / "model.pt")
    return dst / "hf", fs2_dir


def tiny_w2vbert(dst: Path, seed: int = 0) -> Path:
    """A random-weight tiny model of fairseq2's ``w2vbert`` family (conformer layers, relative
    positions, 80-channel fbank input stacked by two), saved as an asset card + checkpoint."""
    import torch
    from fairseq2.models.w2vbert import get_w2vbert_model_hub

    from speechtok.features.ssl_fairseq2 import load_card

    t = TINY_W2V2
    enc = {"model_dim": t["model_dim"], "num_encoder_layers": t["layers"], "num_encoder_attn_heads": t["heads"],
           "ffn_inner_dim": t["ffn"], "depthwise_conv_kernel_size": 5}
    folder = fairseq2_card(dst, "w2vbert", "300m", {
        "w2v2_config": {"encoder_config": enc, "quantized_dim": 16, "final_dim": 16, "num_codebook_entries": 8},
        "num_bert_encoder_layers": 2})
    hub = get_w2vbert_model_hub()
    torch.manual_seed(seed)
    model = hub.create_new_model(hub.get_model_config(load_card(folder)))
    torch.save({"model": model.state_dict()}, folder / "model.pt")
    return folder
