"""Per-utterance hypotheses, one JSON object a line, and their WER/CER.

Every family writes the same record (``hyps.jsonl`` of ``speechtok transcribe``, a trainer's
``dev_hyps.jsonl`` / ``test_hyps.jsonl``)::

    {"id": str, "hypothesis": str, "reference": str | null, "scores": {name: float}}

Scores are decoder-specific (e.g. ``logprob``: sum of the log-probabilities of the hypothesis
tokens and the end token). WER/CER use the project's one normaliser
(`speechtok.trainers.metrics.normalize_text`) over the records that have a reference.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from speechtok.atomic import atomic_open
from speechtok.errors import InputError
from speechtok.trainers.metrics import cer, wer


def hyp_record(utt_id: str, hypothesis: str, reference: str | None,
               scores: Mapping[str, float] | None = None) -> dict[str, Any]:
    """One record (see module docstring); an empty reference is stored as null."""
    return {"id": str(utt_id), "hypothesis": str(hypothesis), "reference": reference or None,
            "scores": {k: float(v) for k, v in (scores or {}).items()}}


def write_hyps(path: str | Path, records: Iterable[Mapping[str, Any]]) -> Path:
    """Writes `records` as JSONL atomically (`speechtok.atomic.atomic_open`); returns the path."""
    with atomic_open(path, "w") as f:
        f.writelines(json.dumps(dict(r), ensure_ascii=False, sort_keys=True) + "\n" for r in records)
    return Path(path)


def read_hyps(path: str | Path) -> list[dict[str, Any]]:
    """The records of a hypotheses file (`InputError` naming the line when one is malformed)."""
    p = Path(path)
    out = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{p}:{n}", f"not JSON ({exc})") from exc
        if not isinstance(rec, dict) or "id" not in rec or "hypothesis" not in rec:
            raise InputError(f"{p}:{n}", "a record needs 'id' and 'hypothesis'")
        out.append(rec)
    return out


def score_hyps(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """WER/CER over the records with a reference: ``{"wer", "cer", "utts", "ref_words",
    "unscored"}`` (``wer``/``cer`` None when no record has a reference)."""

    scored = [r for r in records if r.get("reference")]
    refs = [str(r["reference"]) for r in scored]
    hyps = [str(r["hypothesis"]) for r in scored]
    res: dict[str, Any] = {"utts": len(scored), "unscored": len(records) - len(scored)}
    if not scored:
        return {**res, "wer": None, "cer": None, "ref_words": 0}
    w = wer(refs, hyps)
    return {**res, "wer": w.rate, "cer": cer(refs, hyps).rate, "ref_words": w.ref_units}


def test_set_report(path: str | Path, records: Sequence[Mapping[str, Any]], shards: str | Path) -> dict[str, Any]:
    """Writes the hypotheses of the separate test set `shards` (scored only, never tuned on) to
    `path`; returns their ``test.wer``/``test.cer``/``test.utts``/``test.shards`` for eval.json."""
    write_hyps(path, records)
    scored = score_hyps(records)
    return {"test.wer": scored["wer"], "test.cer": scored["cer"], "test.utts": len(records), "test.shards": str(shards)}
