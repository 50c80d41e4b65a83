"""Speech-to-text translation data path: a JSONL corpus with a `translation` key -> ingest keeps it
in the supervision's custom fields -> shards (`cut` JSON) -> latent trainer with
`data.target=custom.translation` trains and scores against the translations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from speechtok.paths import ROOT
from speechtok.pipeline.recipe import recipe_from_dict
from speechtok.pipeline.runner import RunOptions, run
from speechtok.trainers.latent import run_recipe
from speechtok.trainers.latent.options import target_text


def test_translation_targets_flow_from_jsonl_to_the_latent_trainer(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rng = np.random.default_rng(0)
    lines = []
    for i in range(12):
        t = np.arange(int(16000 * (0.8 + 0.05 * i))) / 16000
        x = 0.2 * np.sin(2 * np.pi * (150 + 30 * i) * t) + 0.01 * rng.standard_normal(t.size)
        sf.write(corpus / f"u{i}.wav", x.astype(np.float32), 16000, subtype="PCM_16")
        lines.append(json.dumps({"audio": f"u{i}.wav", "text": f"tone {i}", "translation": f"ton {i}",
                                 "speaker": f"s{i % 4}"}))
    (corpus / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    recipe = recipe_from_dict({"ingest": {"source": str(corpus / "manifest.jsonl"), "kind": "jsonl",
                                          "sample_rate": 16000},
                               "shards": {"cuts_per_shard": 6},
                               "stages": [{"type": "fbank", "name": "fbank", "config": {"num_mel_bins": 40}}]})
    out = tmp_path / "out"
    run(recipe, out, RunOptions(executor="inline", progress=False))
    sets = {"data.shards": str(out), "data.feats": "feats.fbank", "data.frame_rate": 100.0,
            "data.target": "custom.translation", "data.split.train": 0.5, "stage1.max_steps": 2,
            "train.max_steps": 2, "train.eval_every": 0, "latent.eval_utts": 4, "latent.max_new_tokens": 4}
    assert run_recipe(ROOT / "recipes" / "latent_tiny.yaml", tmp_path / "run", sets) == 0
    ev = json.loads((tmp_path / "run" / "eval.json").read_text())
    refs = [e["ref"] for e in ev["examples"]]
    assert refs and all(r.startswith("ton ") for r in refs)
    assert target_text({"cut": json.dumps({"supervisions": [{"custom": {"translation": "x y"}}]})},
                       "custom.translation") == "x y"
    assert target_text({"text": "a b"}, "text") == "a b" and target_text({"cut": None}, "custom.t") == ""
