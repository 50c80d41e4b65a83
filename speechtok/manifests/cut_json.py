"""A faster `MonoCut.to_dict` for the plain cuts ingest makes (same JSON as lhotse's).

lhotse serialises through `dataclasses.asdict`, which deep-copies every nested object (and, for
a cut, converts its recording twice): about a third of ingest's CPU time on small files. For a
MonoCut with a file recording, no features, no audio transforms and no alignments, this builds
the identical dict (same keys, order and values; tests compare it with lhotse's output) from a
shallow walk. Anything else falls back to `cut.to_dict()`.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from lhotse import MonoCut, Recording, SupervisionSegment
from lhotse.audio import AudioSource

_CUT_FIELDS = tuple(f.name for f in fields(MonoCut))
_REC_FIELDS = tuple(f.name for f in fields(Recording))
_SUP_FIELDS = tuple(f.name for f in fields(SupervisionSegment))
_SRC_FIELDS = tuple(f.name for f in fields(AudioSource))
_PLAIN = (str, int, float, bool)


def _nonnull(obj: object, names: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in names:
        v = getattr(obj, n)
        if v is not None:
            out[n] = v
    return out


def _is_json_plain(v: Any) -> bool:
    if v is None or isinstance(v, _PLAIN):
        return True
    if isinstance(v, list):
        return all(_is_json_plain(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _is_json_plain(x) for k, x in v.items())
    return False


def _fast_ok(cut: Any) -> bool:
    if type(cut) is not MonoCut or cut.features is not None or cut.recording is None:
        return False
    rec = cut.recording
    if rec.transforms or any(s.video is not None for s in rec.sources):
        return False
    if not _is_json_plain(cut.custom):
        return False
    return all(s.alignment is None and _is_json_plain(s.custom) for s in cut.supervisions)


def cut_to_dict(cut: MonoCut) -> dict[str, Any]:
    """The dict lhotse's ``cut.to_dict()`` returns, built faster for plain cuts."""
    rec = cut.recording
    if rec is None or not _fast_ok(cut):
        return dict(cut.to_dict())
    rec_d = _nonnull(rec, _REC_FIELDS)
    rec_d["sources"] = [_nonnull(s, _SRC_FIELDS) for s in rec.sources]
    for s in rec_d["sources"]:
        s["channels"] = list(s["channels"])
    if "channel_ids" in rec_d:
        rec_d["channel_ids"] = list(rec_d["channel_ids"])
    d = _nonnull(cut, _CUT_FIELDS)
    d["supervisions"] = [_nonnull(s, _SUP_FIELDS) for s in cut.supervisions]
    d["recording"] = rec_d
    d["type"] = "MonoCut"
    return d
