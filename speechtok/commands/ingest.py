"""`speechtok ingest SOURCE -o OUT`: a corpus on disk -> validated lhotse cuts + quarantine."""

from __future__ import annotations

import argparse
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path

from speechtok.errors import ConfigError
from speechtok.manifests.sources import KINDS

_EPILOG = """\
examples:
  speechtok ingest data/train -o work/train                  # Kaldi dir (has wav.scp)
  speechtok ingest fsdd/audio -o work/fsdd \\
      --label-regex '(?P<text>\\d)_(?P<speaker>[a-z]+)_\\d+'   # labels from file names
  speechtok ingest corpus/ -o work/c --speaker-from top-dir  # wav + .txt sidecars
  speechtok ingest utts.jsonl -o work/u --sample-rate 16000  # {"audio":..,"text":..}
  speechtok ingest recordings.jsonl.gz -o work/l --kind lhotse
  speechtok ingest manifest.json -o work/n --kind nemo       # NeMo: audio_filepath, offset, ...
  speechtok ingest hf_ds/ -o work/h --kind hf --text-column sentence   # save_to_disk or Parquet
  speechtok ingest hf_ds/ -o work/h --kind hf --extract-flac # embedded audio -> OUT/audio/*.flac
  speechtok ingest data/train -o work/train --splits 0.8,0.1,0.1

Writes OUT/cuts.jsonl.gz (lhotse CutSet), OUT/quarantine.jsonl (one JSON object per
rejected or flagged item: id, path, reason, detail, kept) and OUT/ingest.json. Exit 0
when the run finished, even with quarantined items; with --strict, exit 1 at the first
bad item, naming it and its reason.
"""


def _run(args: argparse.Namespace) -> int:
    # lazy: lhotse and torch (ingest, splits), soundfile (audio_check): `speechtok --help` needs none
    from speechtok.manifests.audio_check import AudioCheckConfig
    from speechtok.manifests.ingest import IngestOptions, ingest
    from speechtok.manifests.splits import check_ratios, write_splits

    ratios: tuple[float, ...] | None = None
    if args.splits:
        try:
            ratios = tuple(float(x) for x in args.splits.split(","))
        except ValueError as exc:
            raise ConfigError("--splits", args.splits, "must be three numbers like 0.8,0.1,0.1") from exc
        check_ratios(ratios)
    opts = IngestOptions(
        text_tsv=Path(args.text_tsv) if args.text_tsv else None,
        label_regex=args.label_regex,
        language=args.language,
        speaker_from=args.speaker_from.replace("-", "_"),
        supervisions=Path(args.supervisions) if args.supervisions else None,
        channel_policy=args.channels,
        rebase_paths=not args.no_rebase,
        check=AudioCheckConfig(max_channels=args.max_channels, tolerance_s=args.tolerance),
        audio_column=args.audio_column,
        text_column=args.text_column,
        speaker_column=args.speaker_column,
        id_column=args.id_column,
        extract_flac=args.extract_flac,
    )
    executor: Executor | None = ProcessPoolExecutor(args.jobs) if args.jobs > 1 else None
    try:
        report = ingest(
            Path(args.source),
            Path(args.output),
            kind=args.kind,
            sample_rate=args.sample_rate,
            strict=args.strict,
            options=opts,
            executor=executor,
            progress=False if args.no_progress else None,
        )
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)
    print(report.summary())
    if ratios is not None:
        paths = write_splits(report.cuts_path, report.out_dir, ratios=ratios, seed=args.split_seed)
        print("  splits by speaker (else recording): " + ", ".join(f"{k} -> {v.name}" for k, v in paths.items()))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the `ingest` subcommand."""
    p = sub.add_parser(
        "ingest",
        help="validate a corpus into lhotse cuts (bad items quarantined with a reason)",
        description="Ingest an audio directory, Kaldi data dir, JSONL list, lhotse or NeMo manifest, "
        "or a local Hugging Face dataset (save_to_disk directory or Parquet folder) "
        "into OUT/cuts.jsonl.gz, quarantining every unusable item with a specific reason.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", help="audio directory, Kaldi data dir, .jsonl list, lhotse or NeMo "
                   "manifest, or Hugging Face dataset directory")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.add_argument("--kind", choices=KINDS, default="auto", help="source kind (default: auto)")
    p.add_argument("--sample-rate", type=int, metavar="HZ", help="resample cuts to HZ (lazy, lhotse)")
    p.add_argument("--strict", action="store_true", help="fail at the first quarantined item")
    p.add_argument("--text-tsv", metavar="TSV", help="dir: transcripts, `id<TAB>text` per line")
    p.add_argument(
        "--label-regex",
        metavar="RX",
        help="dir: regex on file stems with named groups text/speaker/language",
    )
    p.add_argument("--language", help="language for items that do not name one")
    p.add_argument(
        "--speaker-from",
        choices=("none", "top-dir", "parent-dir"),
        default="none",
        help="dir: take the speaker from the first directory under SOURCE or the file's directory",
    )
    p.add_argument("--supervisions", metavar="FILE", help="lhotse: supervisions for a recordings manifest")
    p.add_argument(
        "--channels",
        choices=("first", "split", "reject"),
        default="first",
        help="multi-channel files: keep channel 0 (default), one cut per channel, or quarantine",
    )
    p.add_argument("--max-channels", type=int, default=2, help="quarantine files with more channels (default 2)")
    p.add_argument(
        "--tolerance",
        type=float,
        default=0.025,
        metavar="S",
        help="allowed declared-vs-decoded duration difference in seconds (default 0.025)",
    )
    p.add_argument("--audio-column", default="audio", metavar="COL",
                   help="hf: the Audio ({bytes, path}) or path column (default audio)")
    p.add_argument("--text-column", metavar="COL",
                   help="hf: transcript column (default: first of text, sentence, transcription, ...)")
    p.add_argument("--speaker-column", metavar="COL",
                   help="hf: speaker column (default: first of speaker, speaker_id, client_id)")
    p.add_argument("--id-column", metavar="COL",
                   help="hf: utterance id column (default: first of id, key, utt_id, ...; else FILE-ROW)")
    p.add_argument("--extract-flac", action="store_true",
                   help="hf: write embedded audio once to OUT/audio/ID.flac instead of reading it "
                   "in place from the dataset's files")
    p.add_argument("--no-rebase", action="store_true", help="do not resolve missing manifest paths by suffix")
    p.add_argument(
        "--splits",
        metavar="TR,DEV,TEST",
        help="also write cuts.{train,dev,test}.jsonl.gz split by a hash of the speaker (e.g. 0.8,0.1,0.1)",
    )
    p.add_argument("--split-seed", type=int, default=0, help="seed of the split hash (default 0)")
    p.add_argument("-j", "--jobs", type=int, default=1, help="decoding processes (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)
