"""Token cards: what a tokenizer costs and what it keeps, measured on a corpus.

    card = build_card("lyra", load_corpus("../shared/data/speechocean762-train80", 20), opts)
    write_card(card, "cards/lyra")      # card.json, card.md, card.png (atomic writes)
    compare_cards(["cards/lyra", "cards/dmel"], "cards/compare")   # table.md/.json/.png

Fields of ``card.json`` (None where not measurable, with the reason in ``notes``):
- static: ``name, family, weights, weights_note, frame_rate, num_codebooks, vocab_size,
  bitrate_bps, causal``;
- measured on the corpus: ``rtf_per_core`` (CPU s of encoding / audio s, the process pinned
  to 1 thread by the caller), ``batch_invariance`` (fraction of frames whose tokens equal those
  of the cut encoded alone, over the first 8 cuts), ``num_cuts, audio_s``;
- resynthesis (real weights only): ``stoi, si_sdr_db, mel_distance, dnsmos_ovrl,
  dnsmos_ovrl_original, speaker_similarity, wer_resynth, wer_original``;
- units: ``unit_entropy_bits, unit_perplexity, dedup_ratio``; ``pnmi, phone_purity,
  cluster_purity`` of codebook 0 only when frame labels are given (``--labels``;
  speechocean762-train80 has none: canonical phones per word, no timings), else None.
"""

from __future__ import annotations

import io
import json
import math
import resource
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from speechtok.atomic import write_bytes, write_json, write_text
from speechtok.cards.corpus import SR, CardCut
from speechtok.cards.quality import SpeakerEncoder, Transcriber, dnsmos, speaker_similarity, wer
from speechtok.cards.registry import RANDOM, CardOptions, CardTokenizer, build_card_tokenizer
from speechtok.errors import InputError
from speechtok.tokenizers.acoustic.alignment import frame_map

#: Columns of the comparison table, in order: (field, header, format).
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("weights", "weights", "s"), ("frame_rate", "Hz", ".4g"), ("num_codebooks", "Q", "d"),
    ("vocab_size", "K", "d"), ("bitrate_bps", "bit/s", ".0f"), ("causal", "causal", "s"),
    ("batch_invariance", "batch-inv.", ".3f"), ("rtf_per_core", "RTF/core", ".3f"),
    ("stoi", "STOI", ".3f"), ("si_sdr_db", "SI-SDR dB", ".1f"), ("mel_distance", "mel dist", ".2f"),
    ("dnsmos_ovrl", "DNSMOS", ".2f"), ("speaker_similarity", "spk sim", ".3f"),
    ("wer_resynth", "WER resynth", ".3f"), ("wer_original", "WER orig", ".3f"),
    ("unit_perplexity", "unit ppl", ".1f"), ("pnmi", "PNMI", ".3f"),
)


def _mean(xs: Sequence[float]) -> float | None:
    v = [x for x in xs if x is not None and math.isfinite(x)]
    return float(np.mean(v)) if v else None


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def build_card(name: str, cuts: Sequence[CardCut], opts: CardOptions, *, quality: bool = True,
               tokenizer: CardTokenizer | None = None,
               frame_labels: Mapping[str, tuple[Sequence[str], float]] | None = None) -> dict[str, Any]:
    """Measures the card of tokenizer `name` on `cuts` (see module docstring for the fields).

    Args:
        name: a `registry.NAMES` entry.
        cuts: the corpus (16 kHz); k-means and dMel are fitted on it unless given.
        opts: model locations.
        quality: compute resynthesis / ASR figures (real weights only).
        tokenizer: a prebuilt adapter (tests), else built from the registry.
        frame_labels: cut id -> (per-frame labels, their frame rate), e.g. phones at 100 Hz;
            re-timed onto the tokenizer's frames (`alignment.frame_map`, nearest centre) for
            PNMI and purity of codebook 0. Cuts without labels are left out of those figures.
    """
    if not cuts:
        raise InputError("corpus", "holds no cut; a card needs at least one")
    waves = [c.wave for c in cuts]
    tok = tokenizer or build_card_tokenizer(name, waves, opts)
    notes: dict[str, str] = {}
    audio_s = sum(len(w) for w in waves) / SR
    tok.encode(waves[:1])  # warm-up (lazy init, kernels)
    c0 = _cpu_s()
    tokens = tok.encode(waves)
    rtf = (_cpu_s() - c0) / audio_s
    probe = min(8, len(waves))
    alone = [tok.encode([w])[0] for w in waves[:probe]]
    same = np.concatenate([(np.asarray(a) == np.asarray(b)).all(axis=1) if a.shape == b.shape
                           else np.zeros(max(len(a), 1), bool) for a, b in zip(alone, tokens[:probe], strict=True)])
    card: dict[str, Any] = {
        "name": tok.name, "family": tok.family, "weights": tok.weights, "weights_note": tok.weights_note,
        "frame_rate": tok.frame_rate, "num_codebooks": tok.num_codebooks, "vocab_size": tok.vocab_size,
        "bitrate_bps": tok.bitrate, "causal": tok.causal, "num_cuts": len(cuts), "audio_s": round(audio_s, 2),
        "rtf_per_core": rtf, "batch_invariance": float(same.mean()),
        "stoi": None, "si_sdr_db": None, "mel_distance": None, "dnsmos_ovrl": None,
        "dnsmos_ovrl_original": None, "speaker_similarity": None, "wer_resynth": None,
        "wer_original": None, "unit_entropy_bits": None, "unit_perplexity": None, "dedup_ratio": None,
        "pnmi": None, "phone_purity": None, "cluster_purity": None,
    }
    flat = np.concatenate([t[:, 0] for t in tokens])
    card["usage_q0"] = np.bincount(flat, minlength=tok.vocab_size).tolist()
    if tok.family == "semantic":
        # lazy: brings faiss, which only this path needs
        from speechtok.tokenizers.unit_report import unit_report

        rep = unit_report([t[:, 0].astype(np.uint16) for t in tokens], tok.vocab_size, frame_rate=tok.frame_rate)
        card.update(unit_entropy_bits=rep.entropy_bits, unit_perplexity=rep.perplexity,
                    dedup_ratio=rep.dedup_ratio)
    labelled = [(t, frame_labels[c.id]) for t, c in zip(tokens, cuts, strict=True)
                if frame_labels and c.id in frame_labels]
    if labelled:
        card.update(_label_figures(labelled, tok.frame_rate))
        notes["pnmi"] = f"codebook 0 against the given frame labels of {len(labelled)} cuts"
    else:
        notes["pnmi"] = "no frame-level labels given (PNMI/purity need them: --labels)"
    if tok.weights == RANDOM:
        notes["quality"] = "random weights: speed only (no resynthesis or ASR figures)"
    elif tok.decode is None:
        notes["quality"] = "no way back to audio for these tokens (no resynthesis figures)"
    elif quality:
        card.update(_resynthesis(tok, cuts, tokens, opts))
    return {**card, "notes": notes}


def _label_figures(labelled: Sequence[tuple[np.ndarray, tuple[Sequence[str], float]]],
                   frame_rate: float) -> dict[str, Any]:
    """PNMI, phone and cluster purity of codebook 0 against labels re-timed to token frames."""
    # lazy: brings faiss, which only this path needs (`speechtok --help` imports this module)
    from speechtok.tokenizers.unit_report import label_metrics

    units, labels = [], []
    for toks, (lab, rate) in labelled:
        lab_arr = np.asarray(list(lab), dtype=str)
        if lab_arr.size == 0:
            continue
        idx = frame_map(len(toks), frame_rate, float(rate), num_to=len(lab_arr))  # token -> label frame
        units.append(toks[:, 0])
        labels.append(lab_arr[idx])
    if not units:
        return {}
    phone_purity, cluster_purity, pnmi, n = label_metrics(units, labels)
    return {"pnmi": pnmi, "phone_purity": phone_purity, "cluster_purity": cluster_purity,
            "num_labelled_frames": n}


def _resynthesis(tok: CardTokenizer, cuts: Sequence[CardCut], tokens: Sequence[np.ndarray],
                 opts: CardOptions) -> dict[str, Any]:
    # lazy: brings torch, which only this path needs (`speechtok --help` imports this module)
    from speechtok.tokenizers.acoustic.metrics import reconstruction_metrics

    assert tok.decode is not None  # checked by the caller
    resyn = [tok.decode(t, len(c.wave)) for t, c in zip(tokens, cuts, strict=True)]
    rec = [reconstruction_metrics(c.wave, y, SR) for c, y in zip(cuts, resyn, strict=True)]
    spk = SpeakerEncoder()
    out: dict[str, Any] = {
        "stoi": _mean([r["stoi"] for r in rec]), "si_sdr_db": _mean([r["si_sdr"] for r in rec]),
        "mel_distance": _mean([r["mel_distance"] for r in rec]),
        "dnsmos_ovrl": _mean([dnsmos(y)["ovrl_mos"] for y in resyn]),
        "dnsmos_ovrl_original": _mean([dnsmos(c.wave)["ovrl_mos"] for c in cuts]),
        "speaker_similarity": _mean([speaker_similarity(spk, c.wave, y) for c, y in zip(cuts, resyn, strict=True)]),
    }
    model_dir = opts.shared / "models" / "whisper-tiny.en-ct2"
    if all(c.text for c in cuts) and (model_dir / "model.bin").is_file():
        asr = Transcriber(model_dir)
        refs = [c.text for c in cuts]
        out["wer_resynth"] = wer(refs, asr(resyn))
        out["wer_original"] = wer(refs, asr([c.wave for c in cuts]))
    return out


def _fmt(v: Any, spec: str) -> str:
    if v is None:
        return "n/a"
    if spec == "s":
        return str(v)
    if spec == "d":
        return str(int(v))
    return format(float(v), spec)


def card_markdown(card: dict[str, Any]) -> str:
    """The card as a markdown page."""
    lines = [f"# Token card: {card['name']}", "", f"*{card['weights']}* — {card['weights_note']}", "",
             "| field | value |", "|---|---|"]
    for key, head, spec in COLUMNS:
        lines.append(f"| {head} (`{key}`) | {_fmt(card.get(key), spec)} |")
    for key in ("family", "num_cuts", "audio_s", "dnsmos_ovrl_original", "unit_entropy_bits", "dedup_ratio",
                "pnmi", "phone_purity"):
        lines.append(f"| `{key}` | {_fmt(card.get(key), 's' if not isinstance(card.get(key), float) else '.3f')} |")
    lines += ["", *[f"- {k}: {v}" for k, v in card.get("notes", {}).items()], ""]
    return "\n".join(lines)


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def write_card(card: dict[str, Any], out_dir: str | Path) -> Path:
    """Writes ``card.json``, ``card.md`` and ``card.png`` (token usage of codebook 0 and the
    resynthesis figures) into `out_dir`, each atomically; returns `out_dir`."""
    # lazy: matplotlib takes most of a second to import; only the figure needs it
    import matplotlib

    matplotlib.use("Agg")
    # lazy: as above, once the backend is chosen
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "card.json", card, indent=1)
    write_text(out / "card.md", card_markdown(card))
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    usage = np.asarray(card["usage_q0"], float)
    ax[0].bar(np.arange(len(usage)), np.sort(usage)[::-1] / max(usage.sum(), 1), width=1.0)
    ax[0].set(title=f"{card['name']}: token usage, codebook 0 (sorted)", xlabel="token rank", ylabel="share")
    keys = [k for k in ("stoi", "speaker_similarity", "batch_invariance") if card.get(k) is not None]
    ax[1].bar(keys, [card[k] for k in keys])
    ax[1].set(title=f"{card['weights']}", ylim=(0, 1))
    fig.tight_layout()
    write_bytes(out / "card.png", _png(fig))
    plt.close(fig)
    return out


def _load(p: str | Path) -> dict[str, Any]:
    path = Path(p)
    path = path / "card.json" if path.is_dir() else path
    if not path.is_file():
        raise InputError(str(p), "is not a card directory (no card.json); make one with `speechtok tokenizers card`")
    return dict(json.loads(path.read_text()))


def compare_markdown(cards: Sequence[dict[str, Any]]) -> str:
    """One markdown table across cards (rows: tokenizers; columns: `COLUMNS`)."""
    rows = ["| tokenizer | " + " | ".join(h for _, h, _ in COLUMNS) + " |",
            "|---|" + "---|" * len(COLUMNS)]
    for c in cards:
        rows.append(f"| {c['name']} | " + " | ".join(_fmt(c.get(k), s) for k, _, s in COLUMNS) + " |")
    return "\n".join(rows) + "\n"


def compare_cards(paths: Sequence[str | Path], out_dir: str | Path) -> Path:
    """Writes ``table.md``, ``table.json`` and ``table.png`` (bitrate vs STOI and RTF) for the
    cards in `paths` (card directories or ``card.json`` files) into `out_dir`."""
    # lazy: matplotlib takes most of a second to import; only the figure needs it
    import matplotlib

    matplotlib.use("Agg")
    # lazy: as above, once the backend is chosen
    import matplotlib.pyplot as plt

    cards = [_load(p) for p in paths]
    if not cards:
        raise InputError("cards", "none given")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    slim = [{k: c.get(k) for k in ("name", *(key for key, _, _ in COLUMNS))} for c in cards]
    write_json(out / "table.json", slim, indent=1)
    write_text(out / "table.md", compare_markdown(cards))
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    for c in cards:
        ax[1].scatter(c["bitrate_bps"], c["rtf_per_core"])
        ax[1].annotate(c["name"], (c["bitrate_bps"], c["rtf_per_core"]))
        if c.get("stoi") is not None:
            ax[0].scatter(c["bitrate_bps"], c["stoi"])
            ax[0].annotate(c["name"], (c["bitrate_bps"], c["stoi"]))
    ax[0].set(xscale="log", xlabel="bit/s", ylabel="STOI", title="resynthesis (real weights)")
    ax[1].set(xscale="log", xlabel="bit/s", ylabel="CPU s / audio s", title="encoding RTF per core")
    fig.tight_layout()
    write_bytes(out / "table.png", _png(fig))
    plt.close(fig)
    return out
