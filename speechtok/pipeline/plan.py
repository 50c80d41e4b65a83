"""``speechtok run RECIPE -o OUT --plan``: what a run would do, without running it.

Reads only the cut durations of the manifest (in 16 MiB chunks parsed by Arrow's
multi-threaded JSON reader: memory does not grow with the manifest), then prints per stage the
shards, cuts and hours, the estimated CPU (or GPU)
hours from the stage's real-time factor, and the bytes its group will take.

Manifest: the recipe's own when ``ingest.kind: cuts``, else ``OUT/ingest/cuts.jsonl.gz`` when
the corpus is already ingested (``speechtok run R -o OUT --until ingest``); a plan never
ingests (that validates every audio file, which is work a plan must not do).

Real-time factors (CPU seconds per audio second, one thread): measured ones from
``OUT/report.json`` of an earlier (partial) run of the same output when it has them, else the
figures measured on the development machine in ``bench/README.md`` (`DEFAULT_RTF`, with where
each comes from). Bytes: frames per second x bytes per frame from the stage's group metadata
(frame rate, dim, dtype, codebooks), plus the Arrow offsets (8 bytes per row and list).
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.json as pj

from speechtok.errors import SpeechtokError
from speechtok.pipeline.recipe import Recipe
from speechtok.pipeline.stage import StageBase
from speechtok.pipeline.stage_types import build_stage
from speechtok.shards.schema import GroupMeta

#: stage type -> (CPU s per audio s at 1 thread, where the figure comes from).
DEFAULT_RTF: dict[str, tuple[float, str]] = {
    "cuts": (0.0, "no audio is read"),
    "fbank": (1 / 13174.0, "bench fbank.x_realtime_per_core (13174x)"),
    "kmeans_units": (1 / 20000.0, "assignment only; the fit is counted apart"),
    "whisper": (0.187, "bench whisper_ct2.rtf_per_core (tiny.en, CTranslate2)"),
    "ssl": (0.188, "bench hubert.rtf_per_core (HuBERT base, 12 layers)"),
    "codec": (0.079, "bench encodec.rtf_per_core (24 kHz, 6 kbps)"),
    "ctc_align": (0.01, "CTC forced alignment on stored features (estimate)"),
    "unit_bpe": (1 / 50000.0, "sentencepiece over stored units (estimate); the fit apart"),
}


@dataclass
class StagePlan:
    """One stage of a plan."""

    stage: str
    type: str
    group: str
    device: str
    shards: int
    cuts: int
    hours: float
    rtf: float | None
    rtf_source: str
    compute_hours: float | None
    bytes: int | None
    bytes_note: str = ""


@dataclass
class RunPlan:
    """What `plan_run` found: the manifest's totals and one `StagePlan` per stage."""

    manifest: str
    cuts: int
    hours: float
    shards: int
    cuts_per_shard: int
    stages: list[StagePlan] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"manifest": self.manifest, "cuts": self.cuts, "hours": round(self.hours, 3),
                "shards": self.shards, "cuts_per_shard": self.cuts_per_shard,
                "stages": [vars(s) for s in self.stages]}

    def summary(self) -> str:
        lines = [f"plan: {self.cuts:,} cuts, {self.hours:,.1f} h in {self.shards:,} shards of "
                 f"{self.cuts_per_shard} cuts ({self.manifest})",
                 f"  {'stage':14s} {'group':18s} {'device':6s} {'hours':>10s} "
                 f"{'est. compute h':>15s} {'bytes':>12s}"]
        for s in self.stages:
            comp = "?" if s.compute_hours is None else f"{s.compute_hours:,.1f}"
            unit = "GPU" if s.device.startswith("cuda") else "CPU"
            size = "?" if s.bytes is None else _human(s.bytes)
            lines.append(f"  {s.stage:14s} {s.group:18s} {s.device:6s} {s.hours:>10,.1f} "
                         f"{comp:>11s} {unit} {size:>12s}")
        lines.append("  real-time factors: " + "; ".join(
            f"{s.stage} {s.rtf if s.rtf is not None else '?'} ({s.rtf_source})"
            for s in self.stages))
        return "\n".join(lines)


def _human(n: int) -> str:
    v = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if v < 1000 or unit == "PB":
            return f"{v:.1f} {unit}"
        v /= 1000
    return f"{v:.1f} PB"  # pragma: no cover


def manifest_for_plan(recipe: Recipe, out: Path) -> Path:
    """The cuts manifest a plan reads (see module docstring)."""
    if recipe.ingest.kind == "cuts":
        return Path(recipe.ingest.source).expanduser()
    ingested = out / "ingest" / "cuts.jsonl.gz"
    if ingested.exists():
        return ingested
    raise SpeechtokError(
        f"--plan reads an ingested manifest, and {out} has none yet. Ingest first "
        f"(`speechtok run RECIPE -o {out} --until ingest`), or point the recipe at a manifest "
        "with `ingest: {source: cuts.jsonl.gz, kind: cuts}`.")


def read_durations(path: Path, *, chunk_bytes: int = 16 << 20) -> tuple[int, float]:
    """(cuts, total seconds) of a cuts JSONL (``.gz`` or plain), parsing only the top-level
    ``duration`` field: the text is read in chunks of `chunk_bytes` (cut at a line end), each
    parsed by Arrow's multi-threaded JSON reader, so memory stays bounded by the chunk."""
    if not path.exists():
        raise SpeechtokError(f"manifest {str(path)!r} does not exist")
    opts = pj.ParseOptions(explicit_schema=pa.schema([("duration", pa.float64())]),
                           unexpected_field_behavior="ignore")
    n, seconds = 0, 0.0
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        rest = b""
        while True:
            data = fh.read(chunk_bytes)
            buf = rest + data
            cut = buf.rfind(b"\n") + 1 if data else len(buf)  # the last chunk: all that is left
            block, rest = buf[:cut], buf[cut:]
            if block.strip():
                col = pj.read_json(pa.BufferReader(block), parse_options=opts).column(0)
                if col.null_count:
                    raise SpeechtokError(f"{path}: {col.null_count} cuts have no `duration`")
                values = col.to_numpy()
                n += int(values.size)
                seconds += float(np.sum(values, dtype=np.float64))
            if not data:
                break
    return n, seconds


def _measured_rtf(out: Path) -> dict[str, float]:
    """stage name -> CPU s per audio s from ``OUT/report.json`` (stages that ran shards)."""
    path = out / "report.json"
    if not path.exists():
        return {}
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    rtf = {}
    for s in report.get("stages", []):
        if s.get("audio_s") and s.get("process_cpu_s"):
            rtf[str(s["stage"])] = float(s["process_cpu_s"]) / float(s["audio_s"])
    return rtf


_ITEM = {"float16": 2, "float32": 4, "uint16": 2}


def _frame_bytes(kind: str, facts: Mapping[str, Any], dedup: bool) -> int | None:
    """Payload bytes per frame of a group of `kind` with metadata `facts`."""
    if kind in ("feats", "ctc", "states"):
        dim = int(facts.get("dim") or 0)
        return dim * _ITEM.get(str(facts.get("dtype") or "float16"), 2) if dim else None
    if kind == "units":
        return 2 * (2 if dedup else 1)
    if kind == "codes":
        return 2 * int(facts.get("num_codebooks") or 1)
    return None


def bytes_per_second(meta: GroupMeta) -> float | None:
    """Payload bytes per audio second of a group (None when its metadata does not say)."""
    per = _frame_bytes(meta.kind, vars(meta), bool((meta.config or {}).get("dedup")))
    return None if per is None or not meta.frame_rate else float(meta.frame_rate) * per


def _stage_bytes_per_second(stage: StageBase, rates: dict[str, float]
                            ) -> tuple[float | None, str]:
    """Payload bytes per audio second of `stage`'s group, and how it was found."""
    if stage.kind == "cuts":
        return None, "cut metadata (~1 KB per cut)"
    try:
        facts = dict(stage.group_meta_fields())
    except Exception as exc:  # noqa: BLE001 - a model needed for its facts is not there
        return None, f"unknown ({type(exc).__name__}: {str(exc)[:80]})"
    rate = facts.get("frame_rate") or rates.get(str(stage.input_group))
    if not rate:
        return None, "unknown frame rate"
    rates[stage.group()] = float(rate)
    per = _frame_bytes(stage.kind, facts, bool(getattr(stage.config, "dedup", False)))
    if per is None:
        return None, f"no size model for kind {stage.kind!r}"
    return float(rate) * per, f"{rate:g} frames/s x {per} B"


def plan_run(recipe: Recipe, out: Path) -> RunPlan:
    """The plan of running `recipe` into `out` (see module docstring); runs nothing."""
    manifest = manifest_for_plan(recipe, out)
    n, seconds = read_durations(manifest)
    cps = recipe.cuts_per_shard
    shards = math.ceil(n / cps) if n else 0
    plan = RunPlan(manifest=str(manifest), cuts=n, hours=seconds / 3600.0, shards=shards,
                   cuts_per_shard=cps)
    measured = _measured_rtf(out)
    rates: dict[str, float] = {}
    row_overhead = 8 * 2  # Arrow offsets of the id and the payload list
    plan.stages.append(StagePlan(stage="cuts", type="cuts", group="cuts", device="cpu",
                                 shards=shards, cuts=n, hours=plan.hours, rtf=0.0,
                                 rtf_source=DEFAULT_RTF["cuts"][1], compute_hours=0.0,
                                 bytes=n * 1000, bytes_note="~1 KB per cut"))
    for spec in recipe.stages:
        stage = build_stage(spec)
        if stage.name in measured:
            rtf: float | None = measured[stage.name]
            source = f"measured in {out / 'report.json'}"
        elif stage.type_name in DEFAULT_RTF:
            rtf, source = DEFAULT_RTF[stage.type_name]
        else:
            rtf, source = None, "no figure for this stage type"
        bps, note = _stage_bytes_per_second(stage, rates)
        plan.stages.append(StagePlan(
            stage=stage.name, type=stage.type_name, group=stage.group(),
            device=str(getattr(stage.config, "device", "cpu")), shards=shards, cuts=n,
            hours=plan.hours, rtf=None if rtf is None else round(rtf, 6), rtf_source=source,
            compute_hours=None if rtf is None else plan.hours * rtf,
            bytes=None if bps is None else int(bps * seconds + row_overhead * n),
            bytes_note=note))
    return plan
