"""`speechtok transcribe RUN DATA -o OUT`: a trained latent, token or cascade run decodes new data."""

from __future__ import annotations

import argparse

from speechtok.trainers.transcribe import transcribe


def _run(args: argparse.Namespace) -> int:
    s = transcribe(args.run, args.data, args.output, split=args.split, device=args.device)
    scored = (f"WER {100 * s['wer']:.2f}%, CER {100 * s['cer']:.2f}% over {s['utts']} utterances with a reference"
              if s["wer"] is not None else "no references: nothing scored")
    print(f"{s['family']} run {s['run']} decoded {s['decoded']} utterances of {s['data']} in {s['wall_s']:.1f} s; "
          f"{scored}; hypotheses in {args.output}/hyps.jsonl")
    if s["left_out"]:
        first = next(iter(s["left_out"].items()))
        print(f"left out {len(s['left_out'])} utterances (first: {first[0]}: {first[1]}); all are listed under "
              f"`left_out` in {args.output}/transcribe.json")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "transcribe", help="decode a shard (or, for a cascade, Kaldi) directory with a trained run",
        description="Decodes DATA with a trained latent, token or cascade run RUN. DATA must hold the "
                    "groups the run reads, made by the same stages (the command names any that are "
                    "missing). Writes OUT/hyps.jsonl (id, hypothesis, reference, scores) and "
                    "OUT/transcribe.json (WER/CER where references exist).")
    parser.add_argument("run", help="a finished run directory of `speechtok train`")
    parser.add_argument("data", help="shard directory (speechtok run output); Kaldi dir also for a cascade")
    parser.add_argument("-o", "--output", required=True, help="output directory")
    parser.add_argument("--split", choices=("train", "dev", "test"), default=None,
                        help="only the utterances of the run's own speaker split (e.g. dev: reproduces "
                             "the run's dev WER on its own shards)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (CUDA when there is one)")
    parser.set_defaults(func=_run)
