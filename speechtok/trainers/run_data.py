"""Is a shard directory fit for a trained run? The groups the run reads, made the same way.

A run trained on ``feats.whisper`` (or ``units.wkm500``) of one shard directory can decode
another only when that directory holds the same groups, made by the same stages: features with
the same `FeatureSpec`, units from the same k-means model (same checksum). `check_run_data`
says which stages are missing (as recipe lines to run) or which field differs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from speechtok.errors import ConfigError, InputError
from speechtok.shards.index import ShardIndex
from speechtok.shards.reader import ShardDataset
from speechtok.tokenizers.feature_spec import check_spec, feature_spec_from_group


def _meta(shards: Path, group: str) -> Any:
    return ShardDataset(shards, groups=(group,)).meta(group)


def _stage_line(meta: Any) -> str:
    name = meta.group.split(".", 1)[1] if "." in meta.group else meta.group
    cfg = json.dumps(meta.config or {}, sort_keys=True)
    return f"{{type: {meta.stage}, name: {name}, config: {cfg}}}"


def check_run_data(data: str | Path, groups: Sequence[str], *, trained_on: str | Path | None) -> None:
    """Raises unless `data` holds every group of `groups` made as in `trained_on` (the run's
    training shards; when that directory is gone only presence is checked).

    Raises:
        InputError: `data` has no shard index, or lacks groups: names them and the stages (as
            recipe lines) that made them for the run, with the upstream features a units group needs.
        ConfigError: a features group differs in a `FeatureSpec` field, or a units group comes
            from another k-means model or unit BPE (checksum) or vocabulary size.
    """

    data = Path(data)
    if not (data / "index.json").is_file() and not (data / "index.d").is_dir():
        raise InputError(str(data), "is not a shard directory (no index.json): build it with "
                         "`speechtok run RECIPE -o DIR` using the run's feature stages")
    have = set(ShardIndex.load(data).groups())
    train = Path(trained_on) if trained_on is not None else None
    train_ok = train is not None and ((train / "index.json").is_file() or (train / "index.d").is_dir())
    missing = [g for g in ("cuts", *groups) if g not in have]
    if missing:
        lines = []
        if train_ok and train is not None:
            tindex = ShardIndex.load(train)
            for g in missing:
                if g == "cuts" or g not in tindex.groups():
                    continue
                meta = _meta(train, g)
                if meta.kind == "units":
                    up = next((u for u in tindex.groups() if tindex.fingerprint_of(u) == meta.upstream_fingerprint),
                              None)
                    if up is not None and up not in have:
                        lines.append(_stage_line(_meta(train, up)))
                    src = train / "models" / g.split(".", 1)[1]
                    lines.append(_stage_line(meta).replace("config: {", f"config: {{\"model\": \"{src}\", ", 1))
                else:
                    lines.append(_stage_line(meta))
        how = ("; add these stages to its recipe (as the run's shards were made) and run it: "
               + " ; ".join(lines)) if lines else "; build them with the stages the run's shards used"
        raise InputError(str(data), f"lacks the group(s) {missing} that the run reads{how}")
    if not train_ok or train is None:
        return
    for g in groups:
        want, got = _meta(train, g), _meta(data, g)
        if want.kind in ("feats", "states", "ctc"):
            spec_w, spec_g = (feature_spec_from_group(m.stage, m.config or {}, dim=m.dim, frame_rate=m.frame_rate,
                                                      model_checksum=m.model_checksum) for m in (want, got))
            check_spec(spec_w, spec_g, model=f"trained on {train}", group=g)
        elif want.kind == "units":
            if want.model_checksum != got.model_checksum:
                what = "unit BPE" if want.stage == "unit_bpe" else "k-means model"
                raise ConfigError(f"{g}.model_checksum", got.model_checksum,
                                  f"must equal {want.model_checksum!r}, the {what} of {train} (one "
                                  f"vocabulary for every corpus read together; tokenize {data} with "
                                  f"`model: {train / 'models' / g.split('.', 1)[1]}`)")
            if want.vocab_size != got.vocab_size:
                raise ConfigError(f"{g}.vocab_size", got.vocab_size, f"must equal {want.vocab_size}")


def check_test_set(test: str | Path, groups: Sequence[str], *, trained_on: str | Path) -> None:
    """`check_run_data` for a trainer's ``data.test``, plus at least one row to score, checked
    before training: an empty test set used to surface only after training (an error, or a
    ``test.wer`` of None that looked like a result).

    Raises:
        InputError: as `check_run_data`, or `test` has no row that is not quarantined.
    """
    check_run_data(test, groups, trained_on=trained_on)
    ds = ShardDataset(test, groups=("cuts", *groups), columns=[])
    n, quarantined = len(ds), ds.num_quarantined
    ds.close()
    if not n:
        raise InputError(str(test), f"data.test has no row to score ({quarantined} quarantined); point it at a "
                         "shard directory holding the test set")
