"""N-best + reference pairs in HyPoradise's JSON format (hypotheses-to-transcription, H2T).

The format follows the public HyPoradise release and its scripts
(github Hypotheses-Paradise/Hypo2Trans: ``generate_data/whisper/generate_hp_dataset.py``
writes it, ``H2T-LoRA/finetune.py`` and ``inference.py`` read it; the released
``HyPoradise-v0/{train,test}/*.json`` files have the same keys). A file is one JSON *list*, one
object per utterance::

    {"id": "000010011",
     "input": ["we call it bill", ...5 normalised hypotheses, best first...],
     "output": "we call it bear",
     "am_score": [-0.42, ...],             # per hypothesis, as in HyPoradise-v0
     "input1": "we call it bill",          # best hypothesis (H2T-LoRA's field)
     "input2": "we call it bear\\n..."}     # the other hypotheses (H2T-LoRA's field)

Like ``generate_hp_dataset.py``: texts are normalised, duplicates and empty hypotheses are
dropped, a list shorter than `num_hypotheses` is padded by repeating hypotheses (here the last
one, deterministically, instead of a random one), an empty text becomes ``<UNK>``.
Differences, stated: the normaliser is `speechtok.trainers.metrics.normalize_text`, numbers
are left as digits (HyPoradise spells them out with num2words), and the public scripts do not
say how ``input2`` joins the other hypotheses: we join them with newlines (`OTHERS_SEP`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from speechtok import atomic
from speechtok.errors import ConfigError, InputError
from speechtok.models.nbest import Hypothesis, NBestList
from speechtok.trainers.metrics import normalize_text

OTHERS_SEP = "\n"
UNK = "<UNK>"

#: H2T-LoRA's prompt (``H2T-LoRA/templates/H2T-LoRA.json``, key ``prompt_h2t_nbest``).
H2T_PROMPT = (
    "Below is the best-hypotheses transcribed from speech recognition system. Please try to "
    "revise it using the words which are only included into other-hypothesis, and write the "
    "response for the true transcription.\n\n### Best-hypothesis:\n{best}\n\n"
    "### Other-hypothesis:\n{others}\n\n### Response:\n"
)
#: A short prompt for small models trained here: same information, far fewer tokens.
SHORT_PROMPT = "best: {best}\nothers: {others}\nanswer: "
PROMPTS = {"h2t": H2T_PROMPT, "short": SHORT_PROMPT}


def hp_record(nbest: NBestList, *, num_hypotheses: int = 5, normalize: bool = True) -> dict[str, object]:
    """One HyPoradise record of `nbest` (see the module docstring)."""
    if num_hypotheses < 1:
        raise ConfigError("num_hypotheses", num_hypotheses, "must be >= 1")
    kept: list[tuple[str, float]] = []
    for h in nbest.hyps:
        text = normalize_text(h.text) if normalize else h.text.strip()
        if text and text not in (t for t, _ in kept):
            kept.append((text, h.am_score_norm))
        if len(kept) == num_hypotheses:
            break
    if not kept:
        kept = [(UNK, nbest.hyps[0].am_score_norm if nbest.hyps else 0.0)]
    while len(kept) < num_hypotheses:
        kept.append(kept[-1])
    ref = nbest.reference
    output = (normalize_text(ref) if normalize else ref.strip()) if ref is not None else ""
    texts = [t for t, _ in kept]
    return {"id": nbest.id, "input": texts, "output": output or UNK, "am_score": [s for _, s in kept],
            "input1": texts[0], "input2": OTHERS_SEP.join(texts[1:])}


def write_hyporadise(path: Path, nbests: Sequence[NBestList], *, num_hypotheses: int = 5,
                     normalize: bool = True) -> int:
    """Writes `nbests` as one HyPoradise JSON list (atomically); returns the number of records."""
    records = [hp_record(nb, num_hypotheses=num_hypotheses, normalize=normalize) for nb in nbests]
    atomic.write_text(path, json.dumps(records, ensure_ascii=False, indent=1) + "\n")
    return len(records)


def read_hyporadise(path: Path, *, source: str = "hyporadise") -> list[NBestList]:
    """Reads a HyPoradise JSON list back into n-best lists.

    Needs ``input`` (or ``input1`` + ``input2``) and ``output``; ``id`` and ``am_score`` are
    optional (ids default to the position, scores to 0). Hypotheses keep their order as ranks;
    `am_score` and `am_score_norm` both get the file's (length-normalised) score.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise InputError(str(path), "is not a JSON list of records (HyPoradise format)")
    out = []
    for i, rec in enumerate(data):
        if not isinstance(rec, dict) or "output" not in rec:
            raise InputError(f"{path}[{i}]", "has no 'output' field; not a HyPoradise record")
        if "input" in rec:
            texts = list(rec["input"])
        elif "input1" in rec:
            others = rec.get("input2") or ""
            texts = [rec["input1"], *[t for t in str(others).split(OTHERS_SEP) if t]]
        else:
            raise InputError(f"{path}[{i}]", "has neither 'input' nor 'input1'")
        scores = list(rec.get("am_score") or [0.0] * len(texts))
        if len(scores) != len(texts):
            raise InputError(f"{path}[{i}]", f"has {len(texts)} inputs but {len(scores)} am_score values")
        hyps = tuple(Hypothesis(text=t, rank=r, am_score=float(s), am_score_norm=float(s), num_tokens=len(t.split()))
                     for r, (t, s) in enumerate(zip(texts, scores, strict=True)))
        out.append(NBestList(id=str(rec.get("id", i)), source=source, hyps=hyps, reference=rec["output"]))
    return out


def build_prompt(record: dict[str, object], template: str = "short") -> str:
    """The GER prompt of a record: `PROMPTS[template]` filled with ``input1`` / ``input2``."""
    if template not in PROMPTS:
        raise ConfigError("prompt", template, f"must be one of {sorted(PROMPTS)}")
    others = str(record["input2"]).replace(OTHERS_SEP, " | " if template == "short" else "\n")
    return PROMPTS[template].format(best=record["input1"], others=others)
