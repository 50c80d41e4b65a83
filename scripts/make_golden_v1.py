"""Writes the golden v1 shard output to tests/data/golden_v1/ (committed; a few KB).

Run once per on-disk format version: ``.venv/bin/python scripts/make_golden_v1.py``. The test
`tests/pipeline/test_shard_golden.py` reads it with the current reader, so later speechtok
versions keep reading v1 outputs. ``expected.json`` holds the values the reader must return.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from speechtok.shards.testing import write_dummy_output  # noqa: E402


def main() -> None:
    dest = ROOT / "tests" / "data" / "golden_v1"
    shutil.rmtree(dest, ignore_errors=True)
    rows = write_dummy_output(dest / "out", num_cuts=3, shard_size=2, seed=1)
    (dest / "out" / "index.lock").unlink(missing_ok=True)
    expected = []
    for i in range(3):
        units = rows["units.km50"][i]
        feats = np.asarray(rows["feats.d8"][i]["feats"], np.float16)
        expected.append({
            "id": rows["cuts"][i]["id"],
            "duration": rows["cuts"][i]["duration"],
            "text": rows["cuts"][i]["text"],
            "units.km50": np.asarray(units["units"]).tolist(),
            "units.km50.durations": np.asarray(units["durations"]).tolist(),
            "codes.q4": np.asarray(rows["codes.q4"][i]["codes"]).tolist(),
            "feats.d8.shape": list(feats.shape),
            "feats.d8.sha256": hashlib.sha256(feats.tobytes()).hexdigest(),
        })
    (dest / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    total = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    print(f"wrote {dest} ({total} bytes)")


if __name__ == "__main__":
    main()
