"""`speechtok units report OUT [--group units.X] [--labels FILE] [--probe-regex RE] -o DIR`.

Reads a units group from the output directory's shards (deduplicated units are expanded back
to frames with their durations) and writes the unit-quality report (`report.md`, `report.json`,
`usage.png`; see `speechtok.tokenizers.unit_report`).

Labels (`--labels FILE`, JSON lines, keyed by cut id):
    {"id": "utt1", "frame_labels": ["sil", "AH", "AH", ...]}  -> purity and PNMI
    {"id": "utt1", "label": "3", "group": "jackson"}           -> bag-of-units probe
`--probe-regex` takes the probe's label and group from the cut id instead, with named groups
`label` and `group`; `--probe-regex fsdd` is the preset for FSDD ids (`{digit}_{speaker}_{n}`).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from speechtok.errors import ConfigError, InputError, check_at_least
from speechtok.shards.index import ShardIndex
from speechtok.shards.reader import ShardDataset

FSDD_REGEX = r"(?:^|[/_-])(?P<label>\d)_(?P<group>[a-z]+)_\d+$"


def read_units(out_dir: Path, group: str | None) -> tuple[str, list[str], list[np.ndarray], Any]:
    """(group, cut ids, frame-level units per cut, GroupMeta) of a units group of `out_dir`."""
    # lazy: tokenizers.units brings faiss (k-means), which `speechtok --help` does not need
    from speechtok.tokenizers.units import expand

    if group is None:
        groups = [g for g in ShardIndex.load(out_dir).require_entries().groups() if g.startswith("units.")]
        if len(groups) != 1:
            raise InputError(str(out_dir), f"has units groups {groups}; pick one with --group")
        group = groups[0]
    if not group.startswith("units."):
        raise ConfigError("--group", group, "must be a units group like 'units.km100'")
    ds = ShardDataset(out_dir, groups=(group,))
    meta = ds.meta(group)
    ids, units = [], []
    for row in ds:
        u = np.asarray(row[group])
        d = row.get(f"{group}.durations")
        ids.append(str(row["id"]))
        units.append(expand(u, np.asarray(d)) if d is not None else u.astype(np.uint16))
    return group, ids, units, meta


def read_labels(path: Path) -> dict[str, dict[str, Any]]:
    """Cut id -> its label record, from a JSON-lines file."""
    out: dict[str, dict[str, Any]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"cannot be read as a UTF-8 labels file ({exc})") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            out[str(rec["id"])] = rec
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"{path}:{n}", f"not a JSON object with an 'id': {exc}") from exc
    return out


def probe_regex(pattern: str) -> re.Pattern[str]:
    """The compiled `--probe-regex` (``fsdd``: the FSDD preset); `ConfigError` unless it is a valid
    regular expression with the named groups ``label`` and ``group``."""
    try:
        rx = re.compile(FSDD_REGEX if pattern == "fsdd" else pattern)
    except re.error as exc:
        raise ConfigError("--probe-regex", pattern, f"must be a valid regular expression ({exc})") from exc
    if not {"label", "group"} <= set(rx.groupindex):
        raise ConfigError("--probe-regex", pattern, "must have the named groups (?P<label>...) and (?P<group>...)")
    return rx


def _report(args: argparse.Namespace) -> int:
    # lazy: the report brings faiss (k-means baselines), which `speechtok --help` does not need
    from speechtok.tokenizers.unit_report import label_metrics, unit_report, write_report


    check_at_least(2, **{"--k": args.k})
    rx = probe_regex(args.probe_regex) if args.probe_regex else None
    group, ids, units, meta = read_units(Path(args.out), args.group)
    k = int(args.k if args.k is not None else meta.vocab_size or 0)
    if k < 2:
        raise InputError(group, "has no vocab_size in its metadata; pass --k")
    frame_labels = utt_labels = utt_groups = None
    labels = read_labels(Path(args.labels)) if args.labels else {}
    if labels and any("frame_labels" in r for r in labels.values()):
        keep = [i for i, cid in enumerate(ids) if "frame_labels" in labels.get(cid, {})]
        frame_labels = [np.asarray(labels[ids[i]]["frame_labels"]) for i in keep]
        if len(keep) < len(ids):  # purity over labelled cuts only
            print(f"units report: {len(ids) - len(keep)} of {len(ids)} cuts have no frame labels")
    if rx is not None:
        found = [rx.search(cid) for cid in ids]
        missing = [cid for cid, m in zip(ids, found, strict=True) if m is None]
        if missing:
            raise InputError(missing[0], f"cut id does not match --probe-regex {rx.pattern!r}")
        utt_labels = [m.group("label") for m in found if m is not None]
        utt_groups = [m.group("group") for m in found if m is not None]
    elif labels and all("label" in labels.get(cid, {}) for cid in ids):
        utt_labels = [str(labels[c]["label"]) for c in ids]
        utt_groups = [str(labels[c].get("group", "")) for c in ids]
    rep = unit_report(units, k, frame_rate=meta.frame_rate, utterance_labels=utt_labels,
                      utterance_groups=utt_groups, seed=args.seed)
    if frame_labels is not None:
        sub = [units[i] for i, cid in enumerate(ids) if "frame_labels" in labels.get(cid, {})]
        rep.phone_purity, rep.cluster_purity, rep.pnmi, rep.num_labelled_frames = label_metrics(
            sub, frame_labels
        )
    md = write_report(rep, Path(args.output), title=f"Unit quality: {group} of {args.out}")
    print(md.read_text())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("units", help="semantic units: quality report")
    cmds = parser.add_subparsers(dest="units_command", metavar="SUBCOMMAND", required=True)
    p = cmds.add_parser("report", help="unit usage, dedup rate, purity/PNMI, probe; md + png")
    p.add_argument("out", help="output directory with shards")
    p.add_argument("--group", help="units group, e.g. units.km100 (default: the only one)")
    p.add_argument("--labels", help="JSON lines with frame_labels and/or label+group per cut id")
    p.add_argument("--probe-regex", help="regex with named groups label, group on cut ids; 'fsdd'")
    p.add_argument("--k", type=int, help="vocabulary size (default: the group's vocab_size)")
    p.add_argument("--seed", type=int, default=0, help="seed of the probe split and baseline")
    p.add_argument("-o", "--output", required=True, help="report directory")
    p.set_defaults(func=_report)
