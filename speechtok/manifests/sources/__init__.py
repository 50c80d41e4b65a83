"""Source readers: each turns a corpus on disk into a stream of `SourceItem | Problem`.

Kinds: ``dir`` (audio tree), ``kaldi`` (data dir with wav.scp), ``jsonl`` (one utterance per
line with an ``audio`` path), ``lhotse`` (cuts, or recordings + supervisions), ``nemo`` (NeMo
JSONL manifest: ``audio_filepath``, ``duration``, ``offset``, ``text``, ``lang``), ``hf`` (a local
Hugging Face dataset: ``save_to_disk`` directory or a folder of Parquet files). `detect_kind`
picks one for ``kind="auto"``.
"""

from __future__ import annotations

from pathlib import Path

from speechtok.errors import ConfigError, InputError
from speechtok.manifests.sources.jsonl import iter_json_lines
from speechtok.manifests.sources.lhotse_manifest import MANIFEST_SUFFIXES, first_manifest_object, manifest_kind

KINDS: tuple[str, ...] = ("auto", "dir", "kaldi", "jsonl", "lhotse", "nemo", "hf")


def detect_kind(source: Path) -> str:
    """Guesses the kind of `source`.

    A directory with ``wav.scp`` is ``kaldi``; a directory holding lhotse ``cuts*`` or
    ``recordings*`` manifests (and no audio) is ``lhotse``; a ``save_to_disk`` directory
    (``state.json`` or ``dataset_dict.json``), a ``.parquet`` file or a directory whose files
    are all Parquet (at any depth) is ``hf``; another directory is ``dir``; a
    JSON/JSONL file is ``nemo`` when its first object that names its kind has an
    ``audio_filepath`` key, ``jsonl`` when it has an ``audio`` key, else ``lhotse``.
    """
    source = Path(source)
    if not source.exists():
        raise InputError(str(source), "does not exist")
    if source.is_file() and source.suffix == ".parquet":
        return "hf"
    if source.is_dir():
        if (source / "wav.scp").exists():
            return "kaldi"
        if (source / "state.json").is_file() or (source / "dataset_dict.json").is_file():
            return "hf"
        names = [p.name for p in source.iterdir()]
        if any(n.startswith(("cuts", "recordings")) and n.endswith(MANIFEST_SUFFIXES) for n in names):
            return "lhotse"
        if _all_parquet(source):
            return "hf"
        return "dir"
    if source.name.endswith(MANIFEST_SUFFIXES):
        by_line = _line_kind(source)  # NeMo manifests are JSONL, often named *.json
        if by_line is not None:
            return by_line
        first = first_manifest_object(source)  # an eager JSON array
        if first is not None and manifest_kind(first) == "utterances":
            return "jsonl"
        return "lhotse"
    if source.name == "wav.scp":
        raise InputError(str(source), "is a wav.scp file; pass its Kaldi data directory instead")
    raise InputError(
        str(source),
        "is neither a directory nor a .json/.jsonl(.gz) manifest; pass --kind explicitly",
    )


def _all_parquet(root: Path) -> bool:
    """True when `root` holds Parquet files and no other data files (README/JSON aside)."""
    files = [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")]
    data = [p for p in files if p.suffix not in (".md", ".json", ".txt", ".yaml", ".lock")]
    return bool(data) and all(p.suffix == ".parquet" for p in data)


def _line_kind(path: Path) -> str | None:
    """``nemo``, ``jsonl`` or ``lhotse`` from the first line of `path` (among its first 100) that
    is an object saying which it is (``audio_filepath``; ``audio``; lhotse keys), else None.

    Lines that do not parse, and objects that name none of these (a transcript-only entry), are
    skipped: the reader quarantines them later, and one bad first line must not change the kind.
    """
    for lineno, obj, _ in iter_json_lines(path):
        if obj is not None:
            if "audio_filepath" in obj:
                return "nemo"
            kind = manifest_kind(obj)
            if kind != "unknown":
                return "jsonl" if kind == "utterances" else "lhotse"
        if lineno >= 100:
            break
    return None


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ConfigError("kind", kind, f"must be one of {', '.join(KINDS)}")
