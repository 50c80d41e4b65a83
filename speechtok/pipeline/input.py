"""The runner's first two steps: ingest the corpus, then cut the manifest into data shards.

Ingest writes ``OUT/ingest/`` (``cuts.jsonl.gz``, ``quarantine.jsonl``, ``ingest.json`` and
``step.json`` with its fingerprint). It is built in a private temporary directory and renamed
into place, so concurrent array tasks may all try: one rename wins, the rest use its result.

Data shards: shard ``j`` holds cuts ``[j * cuts_per_shard, (j + 1) * cuts_per_shard)`` of the
manifest, in manifest order. The split depends only on the manifest and ``cuts_per_shard``,
never on the number of workers or array tasks; with ``--shard-index I --num-shards N`` a task
runs the data shards ``j`` with ``j % N == I``. The manifest is streamed once (lazily): the
``cuts`` group of the selected shards is committed on the way, and ``OUT/plan.json`` records
the number of shards, cuts and audio seconds of each shard.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speechtok import atomic
from speechtok.config import fingerprint_of
from speechtok.errors import ConfigError, SpeechtokError
from speechtok.features.checksum import file_sha256
from speechtok.manifests.ingest import ingest
from speechtok.pipeline.recipe import IngestSpec

INGEST_VERSION = "1"
INGEST_DIR = "ingest"


@dataclass(frozen=True, kw_only=True)
class IngestResult:
    """Where the manifest is and what it is."""

    cuts_path: Path
    quarantine_path: Path
    fingerprint: str
    report: dict[str, Any]
    skipped: bool


def _resolve_source(spec: IngestSpec, out: Path) -> tuple[Path, str]:
    """The corpus path, and how it enters the fingerprint (the demo corpus by name).

    ``demo`` (or ``demo:N`` for N utterances) is the embedded espeak-ng corpus, generated
    offline into ``OUT/demo-corpus`` on first use (a no-op afterwards).
    """
    if spec.source == "demo" or spec.source.startswith("demo:"):
        n_text = spec.source.partition(":")[2]
        if n_text and not n_text.isdigit():
            raise ConfigError("ingest.source", spec.source, "must be demo or demo:N (N utterances)")
        # lazy: the demo corpus brings scipy, which only this path needs
        from speechtok.manifests import demo_corpus

        n = int(n_text) if n_text else demo_corpus.DEFAULT_N
        built = Path(demo_corpus.build_demo_corpus(out / "demo-corpus", n))
        return built / "manifest.jsonl", f"demo:{n}"
    src = Path(spec.source).expanduser()
    if not src.exists():
        raise SpeechtokError(f"corpus {str(src)!r} does not exist; pass --set corpus=PATH "
                             "(an audio dir, Kaldi dir, JSONL or lhotse manifest) or corpus=demo")
    resolved = str(src.resolve())
    return src, resolved


def ingest_step(spec: IngestSpec, out: Path, *, overwrite: bool) -> IngestResult:
    """Runs (or reuses) the ingest of `spec` into ``OUT/ingest``; see module docstring."""

    if spec.kind == "cuts":
        return _use_cuts_manifest(spec, out, overwrite=overwrite)
    src, src_key = _resolve_source(spec, out)
    fp = fingerprint_of({"source": src_key, "kind": spec.kind, "sample_rate": spec.sample_rate,
                         "strict": spec.strict, "options": spec.options,
                         "version": INGEST_VERSION})
    final = out / INGEST_DIR
    step_file = final / "step.json"
    if step_file.exists():
        have = json.loads(step_file.read_text()).get("fingerprint")
        if have == fp:
            return _result(final, fp, skipped=True)
        if not overwrite:
            raise SpeechtokError(
                f"{out} was ingested from another corpus or with other ingest options "
                f"(fingerprint {have}, now {fp}). Write to a new output directory with -o, or "
                f"rerun with --overwrite-stage ingest to redo everything in {out}.")
        shutil.rmtree(final)
    tmp = out / f".ingest.tmp-{socket.gethostname()}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    report = ingest(src, tmp, kind=spec.kind, sample_rate=spec.sample_rate, strict=spec.strict,
                    **spec.options)
    (tmp / "step.json").write_text(json.dumps({"fingerprint": fp, "source": src_key},
                                              sort_keys=True) + "\n")
    try:
        os.rename(tmp, final)
    except OSError:  # another array task renamed first: use its (identical) result
        shutil.rmtree(tmp, ignore_errors=True)
        if not step_file.exists():
            raise
        return _result(final, fp, skipped=True)
    del report
    return _result(final, fp, skipped=False)


def _use_cuts_manifest(spec: IngestSpec, out: Path, *, overwrite: bool) -> IngestResult:
    """``kind: cuts``: an already ingested lhotse cuts manifest (e.g. ``speechtok ingest``
    output), used as it is: no copy, no second validation. Its sha256 is the fingerprint."""

    src = Path(spec.source).expanduser()
    if not src.is_file():
        raise SpeechtokError(f"corpus {str(src)!r} is not a file; with ingest.kind=cuts pass a "
                             "cuts manifest such as INGEST_OUT/cuts.jsonl.gz")
    fp = fingerprint_of({"source": str(src.resolve()), "kind": "cuts",
                         "sha256": file_sha256(src), "version": INGEST_VERSION})
    final = out / INGEST_DIR
    step_file = final / "step.json"
    if step_file.exists():
        have = json.loads(step_file.read_text()).get("fingerprint")
        if have != fp and not overwrite:
            raise SpeechtokError(
                f"{out} was made from another manifest (fingerprint {have}, now {fp}). Write "
                f"to a new output directory with -o, or rerun with --overwrite-stage ingest.")
    final.mkdir(parents=True, exist_ok=True)
    skipped = step_file.exists()
    if not skipped or json.loads(step_file.read_text()).get("fingerprint") != fp:
        atomic.write_text(step_file, json.dumps({"fingerprint": fp, "source": str(src.resolve())},
                                                sort_keys=True) + "\n")
        skipped = False
    q = src.parent / "quarantine.jsonl"
    rep = src.parent / "ingest.json"
    return IngestResult(cuts_path=src, quarantine_path=q, fingerprint=fp,
                        report=json.loads(rep.read_text()) if rep.exists() else {"source": str(src)},
                        skipped=skipped)


def _result(final: Path, fp: str, *, skipped: bool) -> IngestResult:
    rep_path = final / "ingest.json"
    report = json.loads(rep_path.read_text()) if rep_path.exists() else {}
    return IngestResult(cuts_path=final / "cuts.jsonl.gz",
                        quarantine_path=final / "quarantine.jsonl",
                        fingerprint=fp, report=report, skipped=skipped)


def iter_shards(cuts_path: Path, cuts_per_shard: int) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """Streams ``(shard, [cut dict, ...])`` from a JSONL(.gz) cuts manifest, `cuts_per_shard`
    cuts a shard. Cuts stay plain dicts (lhotse's serialised form): no object round trip."""
    opener: Any = gzip.open if cuts_path.suffix == ".gz" else open
    shard, chunk = 0, []
    with opener(cuts_path, "rt", encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                cut = json.loads(line)
            except ValueError as exc:
                raise SpeechtokError(f"{cuts_path}:{line_no} is not valid JSON ({exc}); "
                                     "re-create the manifest with speechtok ingest") from exc
            chunk.append(cut)
            if len(chunk) == cuts_per_shard:
                yield shard, chunk
                shard, chunk = shard + 1, []
    if chunk:
        yield shard, chunk


def selected(shard: int, shard_index: int, num_shards: int) -> bool:
    """True when array task `shard_index` of `num_shards` owns data shard `shard`."""
    return shard % num_shards == shard_index


def read_quarantine_lines(path: Path) -> list[dict[str, Any]]:
    """JSON objects of a quarantine file (absent file: none)."""
    if not path.exists():
        return []
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
    return out
