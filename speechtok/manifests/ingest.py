"""The ingest driver: a corpus on disk -> `OUT/cuts.jsonl.gz` + `OUT/quarantine.jsonl`.

Streaming end to end: a source reader yields items one at a time, each item is decoded once
(in this process or in an `Executor` handed in, with a bounded window of items in flight),
and cuts are appended to a lazy lhotse JSONL writer. Memory stays flat as the corpus grows;
what grows is only the set of ids seen (for ``duplicate_id``) and of speakers (for the report).

Outputs (written as ``*.partial*`` and renamed when the run completes):
- ``cuts.jsonl.gz``: a lhotse CutSet of MonoCuts (`lhotse.CutSet.from_file` reads it), in source
  order; one supervision per cut from plain sources (text, speaker, language when known).
- ``quarantine.jsonl``: one `Problem` per rejected item and per flag (see `quarantine`).
- ``ingest.json``: the `IngestReport` (counts, hours, reasons).
"""

from __future__ import annotations

import json
import os
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import asdict, dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from typing import Any

from lhotse import CutSet
from tqdm import tqdm

from speechtok import atomic
from speechtok.errors import ConfigError, InputError, check_at_least
from speechtok.manifests.audio_check import AudioCheckConfig
from speechtok.manifests.cut_json import cut_to_dict
from speechtok.manifests.cutbuild import BuildConfig, ChannelPolicy, ItemResult, process_item
from speechtok.manifests.items import SourceItem, SourceStream
from speechtok.manifests.quarantine import Problem, QuarantineWriter
from speechtok.manifests.sources import check_kind, detect_kind
from speechtok.manifests.sources.directory import SpeakerFrom, compile_label_regex, iter_directory
from speechtok.manifests.sources.hf import iter_hf
from speechtok.manifests.sources.jsonl import iter_jsonl
from speechtok.manifests.sources.kaldi import iter_kaldi
from speechtok.manifests.sources.lhotse_manifest import iter_lhotse
from speechtok.manifests.sources.nemo import iter_nemo

CUTS_NAME = "cuts.jsonl.gz"
QUARANTINE_NAME = "quarantine.jsonl"
REPORT_NAME = "ingest.json"


@dataclass(frozen=True, kw_only=True)
class IngestOptions:
    """Everything about an ingest besides source, output, kind, rate and strictness.

    Attributes:
        text_tsv: ``dir`` sources: TSV of transcripts (``id<TAB>text`` or a header row).
        label_regex: ``dir`` sources: regex on file stems with groups text/speaker/language.
        language: language for items that do not name one.
        speaker_from: ``dir`` sources: ``"none"``, ``"top_dir"`` or ``"parent_dir"``.
        supervisions: ``lhotse`` sources: the SupervisionSet for a RecordingSet.
        channel_policy: multi-channel files: ``"first"``, ``"split"`` or ``"reject"``.
        rebase_paths: resolve manifest paths that do not exist by their trailing parts.
        check: audio validation thresholds (channels, tolerances, block size).
        window: items in flight when an executor is used (bounds memory).
        audio_column: ``hf`` sources: the ``Audio`` struct or path column.
        text_column, speaker_column, id_column: ``hf`` sources: columns to read (None = the
            first conventional name present, see `sources.hf`).
        extract_flac: ``hf`` sources: write embedded audio once to ``OUT/audio/<id>.flac``
            instead of referencing it in place in the dataset's files.
    """

    text_tsv: Path | None = None
    label_regex: str | None = None
    language: str | None = None
    speaker_from: SpeakerFrom = "none"
    supervisions: Path | None = None
    channel_policy: ChannelPolicy = "first"
    rebase_paths: bool = True
    check: AudioCheckConfig = field(default_factory=AudioCheckConfig)
    window: int = 64
    audio_column: str = "audio"
    text_column: str | None = None
    speaker_column: str | None = None
    id_column: str | None = None
    extract_flac: bool = False

    def validate(self) -> None:
        compile_label_regex(self.label_regex)
        if self.speaker_from not in ("none", "top_dir", "parent_dir"):
            raise ConfigError("speaker_from", self.speaker_from, "must be one of none, top_dir, parent_dir")
        if self.text_tsv is not None and not Path(self.text_tsv).is_file():
            raise ConfigError("text_tsv", str(self.text_tsv), "must be an existing TSV file")
        if self.supervisions is not None and not Path(self.supervisions).is_file():
            raise ConfigError("supervisions", str(self.supervisions), "must be an existing manifest file")
        check_at_least(1, window=self.window)
        BuildConfig(check=self.check, channel_policy=self.channel_policy).validate()


@dataclass(frozen=True, kw_only=True)
class IngestReport:
    """What an ingest did. `hours` counts kept cuts only."""

    source: str
    kind: str
    out_dir: Path
    cuts_path: Path
    quarantine_path: Path
    num_recordings: int
    num_cuts: int
    num_quarantined: int
    num_flagged: int
    reasons: dict[str, int]
    flags: dict[str, int]
    hours: float
    num_speakers: int
    sampling_rates: dict[int, int]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("out_dir", "cuts_path", "quarantine_path"):
            d[k] = str(d[k])
        d["sampling_rates"] = {str(k): v for k, v in self.sampling_rates.items()}
        return d

    def summary(self) -> str:
        """A few lines for the terminal."""
        lines = [
            f"ingest {self.source} ({self.kind}) -> {self.cuts_path}",
            f"  kept      {self.num_cuts} cuts, {self.hours:.3f} h, {self.num_speakers} speakers, "
            f"rates {dict(sorted(self.sampling_rates.items()))}",
            f"  quarantined {self.num_quarantined}"
            + "".join(f"\n    {r:24s} {n}" for r, n in sorted(self.reasons.items())),
        ]
        if self.flags:
            lines.append("  flagged (kept)" + "".join(f"\n    {r:24s} {n}" for r, n in sorted(self.flags.items())))
        lines.append(f"  details in {self.quarantine_path}")
        return "\n".join(lines)


def _coerce(opts: IngestOptions) -> IngestOptions:
    """Accepts plain values from YAML/JSON recipes: str paths, a dict for `check`."""
    changes: dict[str, Any] = {}
    for name in ("text_tsv", "supervisions"):
        v = getattr(opts, name)
        if v is not None and not isinstance(v, Path):
            changes[name] = Path(str(v))
    if isinstance(opts.check, dict):
        try:
            changes["check"] = AudioCheckConfig(**opts.check)
        except TypeError as exc:
            raise ConfigError("check", opts.check, f"must hold AudioCheckConfig fields ({exc})") from exc
    return replace(opts, **changes) if changes else opts


def open_source(source: Path, kind: str, opts: IngestOptions, out_dir: Path | None = None) -> SourceStream:
    """The item stream of `source` for a concrete `kind` (not ``auto``).

    `out_dir`: the ingest's output (``hf`` with `extract_flac` writes ``out_dir/audio``).
    """
    if kind == "dir":
        return iter_directory(
            source,
            label_regex=opts.label_regex,
            text_tsv=opts.text_tsv,
            language=opts.language,
            speaker_from=opts.speaker_from,
        )
    if kind == "kaldi":
        return iter_kaldi(source, language=opts.language, rebase=opts.rebase_paths)
    if kind == "jsonl":
        return iter_jsonl(source, language=opts.language, rebase=opts.rebase_paths)
    if kind == "lhotse":
        return iter_lhotse(source, supervisions=opts.supervisions, rebase=opts.rebase_paths)
    if kind == "nemo":
        return iter_nemo(source, language=opts.language, rebase=opts.rebase_paths)
    if kind == "hf":
        if opts.extract_flac and out_dir is None:
            raise ConfigError("extract_flac", True, "needs the ingest's output directory")
        return iter_hf(
            source,
            audio_column=opts.audio_column,
            text_column=opts.text_column,
            speaker_column=opts.speaker_column,
            id_column=opts.id_column,
            language=opts.language,
            extract_dir=(Path(out_dir) / "audio") if opts.extract_flac and out_dir else None,
            rebase=opts.rebase_paths,
        )
    raise ConfigError("kind", kind, "must be one of dir, kaldi, jsonl, lhotse, nemo, hf")


def _ordered_results(
    stream: SourceStream,
    fn: Callable[[SourceItem], ItemResult],
    executor: Executor | None,
    window: int,
) -> Iterator[Problem | ItemResult]:
    """Maps `fn` over the items of `stream` in order; problems pass through in place."""
    if executor is None:
        for x in stream:
            yield x if isinstance(x, Problem) else fn(x)
        return
    pending: deque[Problem | Future[ItemResult]] = deque()
    for x in stream:
        pending.append(x if isinstance(x, Problem) else executor.submit(fn, x))
        while len(pending) > window:
            head = pending.popleft()
            yield head if isinstance(head, Problem) else head.result()
    while pending:
        head = pending.popleft()
        yield head if isinstance(head, Problem) else head.result()


def _dedup(stream: SourceStream, seen: set[str]) -> SourceStream:
    """Drops segments whose id was already declared (``duplicate_id``), first one wins."""
    for x in stream:
        if isinstance(x, Problem):
            yield x
            continue
        keep = []
        for seg in x.segments:
            if seg.id in seen:
                yield Problem(
                    reason="duplicate_id",
                    id=seg.id,
                    path=str(x.path),
                    origin=x.origin,
                    detail="id already used by an earlier item; the first one is kept",
                )
            else:
                seen.add(seg.id)
                keep.append(seg)
        if keep:
            yield x if len(keep) == len(x.segments) else replace(x, segments=tuple(keep))


def _duplicate_cut(cut: Any, problems: list[Problem]) -> list[Problem]:
    """`problems` of the item with the ``duplicate_id`` of `cut`, whose id an earlier cut already
    has (the first one is kept), in place of the cut's flags (it is not kept)."""
    src = cut.recording.sources[0].source if cut.recording is not None else None
    dup = Problem(reason="duplicate_id", id=cut.id, path=None if src is None else str(src),
                  detail="cut id already used by an earlier cut (a --channels split names its cuts "
                         "<id>_ch<c>); the first one is kept")
    return [p for p in problems if not (p.kept and p.id == cut.id)] + [dup]


def ingest(
    source: str | Path,
    out_dir: str | Path,
    *,
    kind: str = "auto",
    sample_rate: int | None = None,
    strict: bool = False,
    options: IngestOptions | None = None,
    executor: Executor | None = None,
    progress: bool | None = None,
    **overrides: Any,
) -> IngestReport:
    """Ingests a corpus into a validated lhotse CutSet (see the module docstring).

    Args:
        source: audio directory, Kaldi data dir, JSONL file, lhotse manifest (file or dir),
            NeMo manifest, or a local Hugging Face dataset (save_to_disk dir or Parquet folder).
        out_dir: output directory (created); gets cuts.jsonl.gz, quarantine.jsonl, ingest.json.
        kind: ``auto`` (see `detect_kind`), ``dir``, ``kaldi``, ``jsonl``, ``lhotse``, ``nemo``
            or ``hf``.
        sample_rate: resample cuts to this rate (Hz) lazily, or keep each file's rate.
        strict: raise `InputError` at the first quarantined item (flags do not count).
        options: further options; `overrides` replace fields of it by name
            (e.g. ``label_regex=...``, ``speaker_from="top_dir"``).
        executor: decode items in parallel (e.g. a ProcessPoolExecutor); output order is the
            source's either way.
        progress: show a tqdm bar; None = only on a terminal.

    Returns:
        The `IngestReport` (also written to ``out_dir/ingest.json``).

    Raises:
        InputError: the source cannot be read at all, or (strict) the first bad item.
        ConfigError: an invalid option.
    """
    opts = options or IngestOptions()
    if overrides:
        known = {f.name for f in fields(IngestOptions)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError("options", unknown, f"must be fields of IngestOptions ({', '.join(sorted(known))})")
        opts = replace(opts, **overrides)
    opts = _coerce(opts)
    opts.validate()
    check_kind(kind)
    src = Path(source)
    if not src.exists():
        raise InputError(str(src), "does not exist; pass an audio directory, Kaldi dir, JSONL or lhotse manifest")
    concrete = detect_kind(src) if kind == "auto" else kind
    build = BuildConfig(check=opts.check, channel_policy=opts.channel_policy, sample_rate=sample_rate)
    build.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cuts_path, q_path = out / CUTS_NAME, out / QUARANTINE_NAME
    partial_cuts = out / f".{CUTS_NAME}.{os.getpid()}.tmp.gz"
    qw = QuarantineWriter(q_path)

    seen: set[str] = set()
    written: set[str] = set()  # cut ids (a channel split makes ids the source did not declare)
    speakers: set[str] = set()
    rates: Counter[int] = Counter()
    flags: Counter[str] = Counter()
    n_recs = n_cuts = 0
    seconds = 0.0
    # absolute: the cuts' audio paths then hold from any working directory
    stream = _dedup(open_source(Path(os.path.abspath(src)), concrete, opts, Path(os.path.abspath(out))), seen)
    fn = partial(process_item, cfg=build)
    bar = tqdm(desc=f"ingest {src.name}", unit="file", disable=(None if progress is None else not progress))
    try:
        with CutSet.open_writer(partial_cuts) as writer, qw:
            for res in _ordered_results(stream, fn, executor, opts.window):
                problems = [res] if isinstance(res, Problem) else list(res.problems)
                if isinstance(res, ItemResult):
                    n_recs += 1
                    bar.update(1)
                    for cut in res.cuts:
                        if cut.id in written:  # e.g. `x_ch1` of a --channels split and a file `x_ch1`
                            problems = _duplicate_cut(cut, problems)
                            continue
                        written.add(cut.id)
                        writer.write(cut_to_dict(cut))
                        n_cuts += 1
                        seconds += cut.duration
                        rates[cut.sampling_rate] += 1
                        for sup in cut.supervisions:
                            if sup.speaker is not None:
                                speakers.add(sup.speaker)
                for p in problems:
                    if p.kept:
                        flags[p.reason] += 1
                    qw.write(p)
                    if strict and not p.kept:
                        raise InputError(
                            p.path or p.id or p.origin or str(src),
                            f"{p.reason}: {p.detail} (--strict stops at the first bad item; "
                            f"see {q_path})",
                        )
            reasons = {r: n for r, n in qw.counts.items() if r not in flags}
        atomic.fsync_file(partial_cuts)
        # commit: the new manifest, then its quarantine (an earlier pair stays whole until here)
        os.replace(partial_cuts, cuts_path)
        qw.commit()
    except BaseException:
        partial_cuts.unlink(missing_ok=True)
        qw.discard()
        raise
    finally:
        bar.close()
    report = IngestReport(
        source=str(src),
        kind=concrete,
        out_dir=out,
        cuts_path=cuts_path,
        quarantine_path=q_path,
        num_recordings=n_recs,
        num_cuts=n_cuts,
        num_quarantined=sum(reasons.values()),
        num_flagged=sum(flags.values()),
        reasons=dict(sorted(reasons.items())),
        flags=dict(sorted(flags.items())),
        hours=seconds / 3600.0,
        num_speakers=len(speakers),
        sampling_rates=dict(sorted(rates.items())),
    )
    atomic.write_text(out / REPORT_NAME, json.dumps(report.to_dict(), indent=2) + "\n")
    return report
