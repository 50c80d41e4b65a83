"""`inspect_output`: what an output directory holds, from its index and shard files.

Per group: provenance (stage, version, fingerprint, config, frame rate, vocab), shards, rows,
bytes; for ``cuts`` the hours of audio; for units/codes the number of tokens, tokens per second
of audio and the top-k histogram of ids (per codebook for codes); for float groups frames.
Reads list offsets and token buffers through memory maps, one shard at a time.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from speechtok.errors import check_at_least
from speechtok.shards.file import ShardFile
from speechtok.shards.index import ShardIndex


def _top_k(counts: np.ndarray, k: int) -> list[list[int]]:
    order = np.argsort(-counts, kind="stable")[:k]
    return [[int(i), int(counts[i])] for i in order if counts[i] > 0]


def inspect_output(out_dir: str | os.PathLike[str], *, top_k: int = 10) -> dict[str, Any]:
    """A JSON-able summary of `out_dir` (see module docstring). Raises `InputError`."""
    check_at_least(0, top_k=top_k)  # -1 listed all ids but the last (a numpy slice)
    out = Path(out_dir)
    index = ShardIndex.load(out).require_entries()
    summary: dict[str, Any] = {"out_dir": str(out), "groups": {}}
    seconds = 0.0
    for g in index.groups():
        entries = [e for e in index.entries(g) if index.committed(g, e.shard)]
        info: dict[str, Any] = {
            "shards": len(entries),
            "rows": sum(e.rows for e in entries),
            "bytes": sum(e.bytes for e in entries),
            "not_committed": len(index.entries(g)) - len(entries),
            "compression": sorted({e.compression or "none" for e in entries}),
        }
        counts: np.ndarray | None = None
        frames = 0
        for k, e in enumerate(entries):
            f = ShardFile(out / e.path, e, group=g, checksum=False)
            if k == 0:
                meta = asdict(f.meta)
                info["schema"] = [f"{fl.name}: {fl.type}" for fl in f.schema]
                info["provenance"] = meta
            kind = f.meta.kind
            if kind == "cuts":
                tab = f.table()
                seconds += float(np.sum(tab.column("duration").to_numpy()))
            elif kind in ("units", "codes"):
                col = "units" if kind == "units" else "codes"
                width = f.meta.num_codebooks or 1
                size = max(f.meta.vocab_size or 0, 1)
                if counts is None:
                    counts = np.zeros((width, size), np.int64)
                for b in range(len(f.batch_starts) - 1):
                    lc = f.list_column(b, col)
                    vals = lc.values[lc.offsets[0] : lc.offsets[-1]].reshape(-1, width)
                    frames += len(vals)
                    for q in range(width):
                        bc = np.bincount(vals[:, q], minlength=size)
                        if len(bc) > counts.shape[1]:
                            counts = np.pad(counts, ((0, 0), (0, len(bc) - counts.shape[1])))
                        counts[q, : len(bc)] += bc
            elif kind == "align":
                frames += int(f.lengths("alignment").sum())  # aligned words
            elif kind != "nbest":
                frames += int(f.lengths("feats").sum())
            f.close()
        if g != "cuts" and entries:
            info["frames"] = frames
        if counts is not None:
            vocab = info["provenance"].get("vocab_size") or 0
            if vocab and counts.shape[1] > vocab:  # a payload flip the structure checks cannot see
                info["out_of_vocab"] = int(counts[:, vocab:].sum())
            info["tokens"] = int(counts.sum())
            info["distinct_ids"] = [int((c > 0).sum()) for c in counts]
            info["top_ids"] = [_top_k(c, top_k) for c in counts]
        summary["groups"][g] = info
    summary["hours"] = seconds / 3600.0
    for info in summary["groups"].values():
        if "tokens" in info and seconds > 0:
            info["tokens_per_second"] = info["tokens"] / seconds
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable text of `inspect_output`'s summary."""
    lines = [f"{summary['out_dir']}: {summary['hours']:.4f} h of audio"]
    for g, info in summary["groups"].items():
        prov = info.get("provenance", {})
        lines.append(f"\n[{g}] {info['shards']} shards, {info['rows']} rows, "
                     f"{info['bytes'] / 1e6:.2f} MB, compression {','.join(info['compression'])}"
                     + (f", {info['not_committed']} NOT committed" if info["not_committed"] else ""))
        if prov:
            lines.append(f"  stage {prov['stage']} v{prov['stage_version']}, fingerprint "
                         f"{prov['fingerprint']}, upstream {prov['upstream_fingerprint']}")
            extra = {k: prov[k] for k in ("frame_rate", "vocab_size", "num_codebooks", "dim",
                                          "dtype", "model_checksum") if prov.get(k) is not None}
            if extra:
                lines.append("  " + ", ".join(f"{k} {v}" for k, v in extra.items()))
            lines.append(f"  config {prov['config']}")
        if "schema" in info:
            lines.append("  schema: " + "; ".join(info["schema"]))
        if "frames" in info:
            lines.append(f"  frames {info['frames']}")
        if "tokens" in info:
            tps = info.get("tokens_per_second")
            lines.append(f"  tokens {info['tokens']}"
                         + (f", {tps:.1f} tokens/s of audio" if tps is not None else "")
                         + f", distinct ids {info['distinct_ids']}")
            for q, top in enumerate(info["top_ids"]):
                name = "top ids" if len(info["top_ids"]) == 1 else f"codebook {q} top ids"
                lines.append(f"  {name}: " + " ".join(f"{i}:{c}" for i, c in top))
            if info.get("out_of_vocab"):
                lines.append(f"  CORRUPT: {info['out_of_vocab']} ids >= vocab_size {prov.get('vocab_size')}; "
                             "run `speechtok verify` and rerun the stage")
    return "\n".join(lines)
