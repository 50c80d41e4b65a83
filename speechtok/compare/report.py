"""The comparison report: `compare.json` (every number), `compare.md` (a table and notes) and
PNG bar charts (`wer.png`, `tokens_per_s.png`, `params.png`, `train_time.png`).

A family record is a flat dict (see `speechtok.compare.families`): `family`, `status`
("ok" | "failed" | "skipped"), and when ok `test_wer` (test speakers or the separate test set
only), `dev_wer`, `wer` (dev + test), `cer`, `llm_tokens_per_s`, `trainable_params`,
`total_params`, `train_s`, `rtf`, `can_generate_speech`, `speech_intelligibility`, `data_needed`;
when failed `error`.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from speechtok import atomic

#: (record key, chart file, axis label) of each PNG.
CHARTS: tuple[tuple[str, str, str], ...] = (
    ("test_wer", "wer.png", "test WER (test speakers only)"),
    ("llm_tokens_per_s", "tokens_per_s.png", "tokens fed to the LLM per second of audio"),
    ("total_params", "params.png", "parameters (total)"),
    ("train_s", "train_time.png", "training wall time (s)"),
)


def _fmt(value: Any, kind: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if kind == "pct":
        return f"{100 * float(value):.1f}"
    if kind == "int":
        return f"{int(value):,}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def markdown(meta: dict[str, Any], records: Sequence[dict[str, Any]]) -> str:
    """The markdown report for `records` (one per family) and the run's `meta` (recipe, timings)."""
    title = meta.get("title") or meta.get("description") or meta.get("recipe", "")
    lines = [f"# speechtok compare: {title}", ""]
    if meta.get("data"):
        lines += [f"Data: {meta['data']}.", ""]
    if meta.get("title") and meta.get("description"):
        lines += [f"Recipe description: {meta['description']}", ""]
    lines.append(f"Recipe `{meta.get('recipe')}`; shared backbone {meta.get('llm')}, "
                 f"{meta.get('steps')} optimiser steps per family; speaker-disjoint split "
                 f"(train share {meta.get('train_share')}, seed {meta.get('split_seed')}). "
                 f"Total wall time {_fmt(meta.get('wall_s'))} s.")
    held = meta.get("heldout")
    if held:
        lines += ["", f"Held-out speakers ({held['rule']}):",
                  f"- dev (tuning; {held['dev_utts']} utterances): {', '.join(held['dev_speakers'])}",
                  f"- test (scored only; {held['test_utts']} utterances): {', '.join(held['test_speakers'])}",
                  f"- train: {held['train_speakers']} speakers, {held['train_utts']} utterances"]
        if held.get("separate_test_set"):
            t = held["separate_test_set"]
            lines.append(f"- separate test set `{t['source']}` ({t['utts']} utterances): the test WER of every family")
    lines += ["", "| family | backbone | system | status | test WER % | dev WER % | dev+test WER % | CER % | "
              "LLM tokens / s audio | "
              "trainable params | total params | train s | RTF | generates speech | eval utts |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        lines.append("| " + " | ".join([
            r["family"], str(r.get("backbone", "scratch")), _fmt(r.get("system")), r["status"],
            _fmt(r.get("test_wer"), "pct"),
            _fmt(r.get("dev_wer"), "pct"), _fmt(r.get("wer"), "pct"), _fmt(r.get("cer"), "pct"),
            _fmt(r.get("llm_tokens_per_s")), _fmt(r.get("trainable_params"), "int"),
            _fmt(r.get("total_params"), "int"), _fmt(r.get("train_s")), _fmt(r.get("rtf")),
            _fmt(r.get("can_generate_speech")), _fmt(r.get("eval_utts"))]) + " |")
    lines += ["", "## Per family", ""]
    for r in records:
        lines.append(f"**{r['family']}**, backbone {r.get('backbone', 'scratch')} ({r['status']}), "
                     f"recipe `{r.get('recipe')}`")
        if r["status"] == "failed":
            lines.append(f"- error: `{r.get('error')}`")
        if r["status"] == "skipped" and r.get("reason"):
            lines.append(f"- {r['reason']}")
        for key in ("data_needed", "params_note", "rtf_note", "speech_intelligibility"):
            if r.get(key):
                lines.append(f"- {key.replace('_', ' ')}: {r[key]}")
        if r.get("wer_by_system"):
            lines.append("- WER by cascade system (dev + test): " + ", ".join(
                f"{k} {100 * v:.1f}%" for k, v in r["wer_by_system"].items()))
        lines.append("")
    lines += ["## Caveats", ""] + [f"- {c}" for c in meta.get("caveats", [])]
    lines += ["", "Figures: " + ", ".join(f"`{f}`" for _, f, _ in CHARTS) + "; every number: `compare.json`.", ""]
    return "\n".join(lines)


def bar_chart(path: Path, records: Sequence[dict[str, Any]], key: str, label: str) -> None:
    """One bar per family and backbone with a value for `key` (failed ones drawn as an empty slot)."""
    # lazy: matplotlib only for the plot
    import matplotlib

    matplotlib.use("Agg")
    # lazy: as above, once the backend is chosen
    import matplotlib.pyplot as plt

    names = [r["family"] if r.get("backbone", "scratch") == "scratch" else f"{r['family']}\n{r['backbone']}"
             for r in records]
    values = [float(r[key]) if isinstance(r.get(key), int | float) else 0.0 for r in records]
    palette = {"text": "#4c72b0", "latent": "#55a868", "latent_memory": "#8c8c3c", "token": "#c44e52"}
    fig, ax = plt.subplots(figsize=(5 if len(records) <= 3 else 8, 3.2))
    bars = ax.bar(names, values, color=[palette.get(r["family"], "#8172b2") for r in records])
    for b, r in zip(bars, records, strict=True):
        text = _fmt(r.get(key), "pct" if key.endswith("wer") else "") if r["status"] == "ok" else r["status"]
        ax.annotate(text, (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel(label if not key.endswith("wer") else "WER")
    ax.set_title(label, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic.write_bytes(path, buf.getvalue())


def write_report(out_dir: Path, meta: dict[str, Any], records: Sequence[dict[str, Any]]) -> dict[str, Path]:
    """Writes `compare.json`, `compare.md` and the charts into `out_dir`; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "compare.json", "md": out_dir / "compare.md"}
    doc = {"meta": meta, "families": list(records)}
    atomic.write_text(paths["json"], json.dumps(doc, indent=2, default=str) + "\n")
    atomic.write_text(paths["md"], markdown(meta, records))
    charted = [r for r in records if r["status"] != "skipped"]
    for key, name, label in CHARTS:
        paths[name] = out_dir / name
        bar_chart(paths[name], charted, key, label)
    return paths
