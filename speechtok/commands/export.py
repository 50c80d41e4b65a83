"""`speechtok export OUT --to FORMAT -o DEST [--group G] [--split S] [--overwrite]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from speechtok.exports.formats import FORMATS, export_output


def _run(args: argparse.Namespace) -> int:
    n = export_output(Path(args.out_dir), args.to, Path(args.output),
                      groups=args.group or None, split=args.split, overwrite=args.overwrite,
                      task=args.task)
    print(f"speechtok export: wrote {n} rows as {args.to} to {args.output}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "export", help="export shards to Parquet, HF datasets, lhotse, fairseq, memmap, SLAM-LLM, NeMo or ESPnet",
        description="Export an output directory: parquet (one file per shard), hf (a directory "
        "datasets.load_from_disk reads), lhotse (cuts.jsonl.gz with custom fields), fairseq "
        "(SPLIT.tsv, SPLIT.km, dict.km.txt), memmap (nanoGPT-style SPLIT.bin + offsets), slam "
        "(SLAM-LLM SPLIT.jsonl: key, source, target; segments cut to DEST/audio), nemo (NeMo "
        "SPLIT_manifest.json + lhotse Shar in DEST/shar with the groups as Shar fields), espnet "
        "(an ESPnet-SpeechLM speechlm1 data directory for --task: data.json, wav.scp + wav.ark with "
        "the codec/SSL tokens, text, utt2spk, token_lists/, raw/ with the audio wav.scp) or "
        "hf-audio (a save_to_disk dataset with an Audio column and every group as columns). "
        "Every export is streamed and written to a temporary directory renamed to DEST.")
    parser.add_argument("out_dir", help="output directory")
    parser.add_argument("--to", required=True, choices=FORMATS, help="target format")
    parser.add_argument("-o", "--output", required=True, help="destination directory")
    parser.add_argument("--group", action="append", metavar="GROUP",
                        help="field group to export (repeatable; default all; fairseq/memmap: "
                        "the one token group)")
    parser.add_argument("--split", default="train", help="split name of fairseq/memmap/slam/nemo files")
    parser.add_argument("--task", default=None, metavar="TASK",
                        help="espnet only: ESPnet-SpeechLM task template, one of asr (codec tokens -> text; "
                        "default), ssl_asr (SSL units -> text), tts, bpe_tts, audiolm, textlm")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a non-empty destination (the new export is complete before "
                        "the old one is removed); without it a non-empty destination is refused")
    parser.set_defaults(func=_run)
