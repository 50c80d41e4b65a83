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
    JSON/JSONL file is ``nemo`` when its first usable object has an ``audio_filepath`` key,
    ``jsonl`` when it has an ``audio`` key, else ``lhotse``.
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
        if _is_nemo(source):  # NeMo manifests are JSONL, often named *.json
            return "nemo"
        first = first_manifest_object(source)
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


def _is_nemo(path: Path) -> bool:
    """True when the first usable line of `path` (among its first 100) is a JSON object with an
    ``audio_filepath`` key (lines that do not parse are skipped: they are quarantined as
    ``bad_entry`` later; an eager JSON array has no such line)."""
    for lineno, obj, _ in iter_json_lines(path):
        if obj is not None:
            return "audio_filepath" in obj
        if lineno >= 100:
            break
    return False


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ConfigError("kind", kind, f"must be one of {', '.join(KINDS)}")
