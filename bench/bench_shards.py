"""Shard writes and reads vs lhotse Shar and Hugging Face `datasets`, like for like; RSS at 10x.

Data: float16 feature rows (D=256) of three sizes, 1 KB (2 frames), 64 KB (128 frames) and
1 MB (2048 frames); ROWS[size] rows each. Same rows, same thread (1), best of `REPEATS` runs
interleaved (ours, Shar, HF, ours, ...), wall and CPU seconds of every side.

Writes, at equal durability (fsync on for all), each library with its default shard size (as
its users run it): speechtok `ShardWriter` (uncompressed IPC, shards of <= 10,000 rows / 1 GiB,
sha256 + fsync + index commit per shard, its only mode); lhotse
`SharWriter(fields={"feats": "numpy"})` (shards of 1,000 cuts) with arrays attached by
`cut.attach_tensor` (cut objects built outside the timed block), then every written file
fsynced; HF
`Dataset.from_dict(...).save_to_disk`, then every written file fsynced. Speedups are on wall
time (`*_wall`: fsync waits are not CPU time); CPU seconds are recorded beside them. The floor
is the fsync'd sequential write bandwidth of the same disk, measured interleaved with the writers
(`write_floor`: the headline payload's bytes in 1 MiB blocks to one file, fsync):
`shards.feats_write_over_fsync_floor` is floor MB/s / ours.

Reads, page cache warm for every reader (right after writing): random vs random (speechtok
`ShardDataset` with its default sha256 check on open, and without; HF `load_from_disk` numpy
format), sequential vs sequential (the first READ rows in order: speechtok, HF, and Shar
`CutSet.from_shar` + `load_custom`, which has no random access). Every reader touches every
byte it returns.

`shards.rss_ratio_10x`: peak RSS of a fresh process writing 200k rows of 500 uint16 tokens / one
writing 20k rows (rows generated on the fly).

Run: `.venv/bin/python -m bench --only shards`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import Fig, Timing, best_of, peak_rss_mb, record, set_threads, timed

TOK_LEN = 500
DIM = 256  # float16 values per frame: 512 bytes
SIZES = {"1kb": 2, "64kb": 128, "1mb": 2048}  # frames per row
ROWS = {"1kb": 8192, "64kb": 1024, "1mb": 128}  # 8, 64, 128 MiB of payload
READ = {"1kb": 4096, "64kb": 512, "1mb": 64}
REPEATS = 3
if os.environ.get("BENCH_SHARDS_QUICK") == "1":  # smoke run: tiny sizes, nothing recorded
    ROWS = {k: v // 16 for k, v in ROWS.items()}
    READ = {k: v // 16 for k, v in READ.items()}
    REPEATS = 1
HEADLINE = "1mb"  # feature-sized rows (500 frames x 768 float16 = 750 KB; 2048 x 256 = 1 MiB)
CODE = ["speechtok/shards/writer.py", "speechtok/shards/file.py",
        "speechtok/shards/reader.py", "speechtok/shards/schema.py"]


def _meta(kind: str) -> Any:
    from speechtok.shards.schema import GroupMeta

    if kind == "tokens":
        return GroupMeta(group="units.bench", kind="units", stage="bench", stage_version="1",
                         fingerprint="bench", vocab_size=1000, frame_rate=50.0)
    return GroupMeta(group="feats.bench", kind="feats", stage="bench", stage_version="1",
                     fingerprint="bench", dim=DIM, dtype="float16", frame_rate=100.0)


def _data(size: str) -> tuple[list[str], list[np.ndarray]]:
    """`ROWS[size]` ids and float16 `(SIZES[size], DIM)` rows."""
    rng = np.random.default_rng(0)
    arrs = [rng.standard_normal((SIZES[size], DIM), dtype=np.float32).astype(np.float16)
            for _ in range(ROWS[size])]
    return [f"cut-{i:06d}" for i in range(len(arrs))], arrs


def fsync_tree(d: Path) -> None:
    """fsyncs every file under `d` and every folder (what makes a peer's output durable)."""
    for p in sorted(d.rglob("*")):
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    for q in [d, *(p for p in d.rglob("*") if p.is_dir())]:
        fd = os.open(q, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _touch(x: Any) -> int:
    return int(np.asarray(x).view(np.uint16).max())


def write_speechtok(d: Path, size: str, ids: list[str], arrs: list[np.ndarray]) -> None:
    from speechtok.shards.writer import ShardWriter

    with ShardWriter(d, _meta("feats")) as w:  # its defaults
        for i, a in zip(ids, arrs, strict=True):
            w.write({"id": i, "feats": a})


def read_speechtok(d: Path, idx: np.ndarray, checksum: bool = True) -> int:
    from speechtok.shards.reader import ShardDataset

    group = _meta("feats").group
    ds = ShardDataset(d, (group,), [group], checksum=checksum)
    s = 0
    for i in idx:
        s += _touch(ds[int(i)][group])
    return s


def write_shar(d: Path, size: str, cuts: list[Any], arrs: list[np.ndarray]) -> None:
    from lhotse.shar import SharWriter

    d.mkdir(parents=True, exist_ok=True)
    with SharWriter(str(d), fields={"feats": "numpy"}) as w:  # its defaults (1000 cuts per shard)
        for c, a in zip(cuts, arrs, strict=True):
            w.write(c.attach_tensor("feats", a, frame_shift=0.01, temporal_dim=0))
    fsync_tree(d)


def read_shar(d: Path, n: int) -> int:
    from lhotse import CutSet

    s = 0
    for k, c in enumerate(CutSet.from_shar(in_dir=str(d))):
        if k >= n:
            break
        s += _touch(c.load_custom("feats"))
    return s


def write_hf(d: Path, size: str, ids: list[str], arrs: list[np.ndarray]) -> None:
    import datasets

    datasets.disable_progress_bars()
    datasets.Dataset.from_dict({"id": ids, "x": arrs}).save_to_disk(str(d))
    fsync_tree(d)


def read_hf(d: Path, idx: np.ndarray) -> int:
    import datasets

    ds = datasets.load_from_disk(str(d)).with_format("numpy")
    s = 0
    for i in idx:
        s += _touch(ds[int(i)]["x"])
    return s


def warm_up(root: Path) -> None:
    """Imports and first-call costs of all three libraries, outside the timed blocks."""
    from lhotse import MonoCut

    ids, arrs = ["a", "b"], [np.zeros((2, DIM), np.float16), np.ones((2, DIM), np.float16)]
    write_speechtok(root / "warm_st", "1kb", ids, arrs)
    read_speechtok(root / "warm_st", np.arange(2))
    write_hf(root / "warm_hf", "1kb", ids, arrs)
    read_hf(root / "warm_hf", np.arange(2))
    cuts = [MonoCut(id=i, start=0.0, duration=1.0, channel=0) for i in ids]
    write_shar(root / "warm_shar", "1kb", cuts, arrs)
    read_shar(root / "warm_shar", 2)


def write_floor(d: Path, nbytes: int) -> None:
    """The floor: `nbytes` in 1 MiB `os.write` blocks to one new file, then fsync (file + dir)."""
    d.mkdir(parents=True, exist_ok=True)
    block = np.random.default_rng(0).integers(0, 255, 1 << 20, np.uint8).tobytes()
    fd = os.open(d / "floor.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for s in range(0, nbytes, len(block)):
            os.write(fd, block[: min(len(block), nbytes - s)])
        os.fsync(fd)
    finally:
        os.close(fd)
    dfd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def run_size(root: Path, size: str) -> dict[str, Timing]:
    """Every write and read of one row size; best of REPEATS interleaved per measurement."""
    from lhotse import MonoCut

    ids, arrs = _data(size)
    n = READ[size]
    rand = np.random.default_rng(1).permutation(len(ids))[:n]
    seq = np.arange(n)
    cuts = [MonoCut(id=i, start=0.0, duration=SIZES[size] * 0.01, channel=0) for i in ids]
    runs: dict[str, list[Timing]] = {}

    def measure(name: str, fn: Any, *args: Any) -> None:
        with timed() as t:
            fn(*args)
        runs.setdefault(name, []).append(t)

    for r in range(REPEATS):
        st, sh, hf = root / f"st_{size}_{r}", root / f"shar_{size}_{r}", root / f"hf_{size}_{r}"
        if size == HEADLINE:  # the floor under the same conditions, interleaved
            measure("floor", write_floor, root / f"floor_{size}_{r}", sum(a.nbytes for a in arrs))
            shutil.rmtree(root / f"floor_{size}_{r}")
        measure("write_speechtok", write_speechtok, st, size, ids, arrs)
        measure("write_shar", write_shar, sh, size, cuts, arrs)
        measure("write_hf", write_hf, hf, size, ids, arrs)
        measure("rand_speechtok", read_speechtok, st, rand)
        measure("rand_speechtok_nochecksum", read_speechtok, st, rand, False)
        measure("rand_hf", read_hf, hf, rand)
        measure("seq_speechtok", read_speechtok, st, seq)
        measure("seq_shar", read_shar, sh, n)
        measure("seq_hf", read_hf, hf, seq)
        for d in (st, sh, hf):
            shutil.rmtree(d)
    best = {k: best_of(v) for k, v in runs.items()}
    for k, t in best.items():
        print(f"  {size:5s} {k:26s} cpu {t.cpu_s:7.3f} s  wall {t.wall_s:7.3f} s", flush=True)
    return best


def _du(d: Path) -> float:
    return sum(p.stat().st_size for p in d.rglob("*") if p.is_file()) / 1e6


def rss_child(rows: int, out: str) -> None:
    """Writes `rows` token rows generated on the fly; prints peak RSS (MiB) as JSON."""
    from speechtok.shards.writer import ShardWriter

    rng = np.random.default_rng(0)
    base = _status_mb("VmRSS")
    with ShardWriter(out, _meta("tokens"), max_rows=10_000) as w:
        for i in range(rows):
            w.write({"id": f"cut-{i:07d}", "units": rng.integers(0, 1000, TOK_LEN, dtype=np.uint16)})
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork+exec from the (big) parent
    print(json.dumps({"rows": rows, "peak_rss_mb": _status_mb("VmHWM"), "base_rss_mb": base}))


def _status_mb(key: str) -> float:
    for ln in Path("/proc/self/status").read_text().splitlines():
        if ln.startswith(key):
            return int(ln.split()[1]) / 1024.0
    return peak_rss_mb()


def rss_ratio(root: Path) -> tuple[float, float, float, float]:
    peaks, base = [], 0.0
    for rows in (20_000, 200_000):
        out = root / f"rss_{rows}"
        r = subprocess.run([sys.executable, "-m", "bench.bench_shards", "--rss-child", str(rows),
                            str(out)], capture_output=True, text=True, check=True)
        res = json.loads(r.stdout.strip().splitlines()[-1])
        peaks.append(res["peak_rss_mb"])
        base = res["base_rss_mb"]
        shutil.rmtree(out)
    return peaks[1] / peaks[0], peaks[0], peaks[1], base


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--rss-child":
        # no set_threads here: it imports torch and faiss, whose ~500 MB would hide the writer
        rss_child(int(sys.argv[2]), sys.argv[3])
        return
    set_threads(1)
    out = Path(__file__).resolve().parents[1] / "runs"
    out.mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="bench_shards_", dir=out))  # the output disk
    try:
        warm_up(root)
        res = {size: run_size(root, size) for size in SIZES}
        ratio, rss_small, rss_big, rss_base = rss_ratio(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    t_floor = res[HEADLINE].pop("floor")
    floor = ROWS[HEADLINE] * SIZES[HEADLINE] * DIM * 2 / 1e6 / t_floor.wall_s
    figs: dict[str, float | Fig] = {"shards.floor_fsync_write_mb_s": Fig(floor, timing=t_floor)}
    notes: dict[str, str] = {"shards.floor_fsync_write_mb_s": (
        f"the {HEADLINE} payload's bytes in 1 MiB os.write blocks to one file + fsync (file, dir) "
        f"on the output disk (runs/), interleaved with the writers, best of {REPEATS}")}
    for size, r in res.items():
        mb = ROWS[size] * SIZES[size] * DIM * 2 / 1e6
        rmb = READ[size] * SIZES[size] * DIM * 2 / 1e6
        sfx = "" if size == HEADLINE else f"_{size}"
        for side in ("speechtok", "shar", "hf"):
            w = r[f"write_{side}"]
            figs[f"shards.feats_write_{side}_wall_s_{size}"] = Fig(w.wall_s, timing=w)
        for side in ("speechtok", "speechtok_nochecksum", "hf"):
            figs[f"shards.feats_rand_read_{side}_wall_s_{size}"] = Fig(r[f"rand_{side}"].wall_s,
                                                                        timing=r[f"rand_{side}"])
        for side in ("speechtok", "shar", "hf"):
            figs[f"shards.feats_seq_read_{side}_wall_s_{size}"] = Fig(r[f"seq_{side}"].wall_s, timing=r[f"seq_{side}"])
        ws = r["write_speechtok"]
        figs[f"shards.feats_write_mb_s_{size}"] = Fig(mb / ws.wall_s, timing=ws)
        figs[f"shards.feats_write_speedup_vs_shar_wall{sfx}"] = Fig(
            r["write_shar"].wall_s / ws.wall_s, timing=ws, peers=[f"shards.feats_write_shar_wall_s_{size}"])
        figs[f"shards.feats_write_speedup_vs_shar_cpu_{size}"] = Fig(
            r["write_shar"].cpu_s / ws.cpu_s, timing=ws, peers=[f"shards.feats_write_shar_wall_s_{size}"])
        figs[f"shards.feats_write_speedup_vs_hf_wall_{size}"] = Fig(
            r["write_hf"].wall_s / ws.wall_s, timing=ws, peers=[f"shards.feats_write_hf_wall_s_{size}"])
        figs[f"shards.feats_rand_read_speedup_vs_hf_{size}"] = Fig(
            r["rand_hf"].wall_s / r["rand_speechtok"].wall_s, timing=r["rand_speechtok"],
            peers=[f"shards.feats_rand_read_hf_wall_s_{size}"])
        figs[f"shards.feats_seq_read_speedup_vs_shar_{size}"] = Fig(
            r["seq_shar"].wall_s / r["seq_speechtok"].wall_s, timing=r["seq_speechtok"],
            peers=[f"shards.feats_seq_read_shar_wall_s_{size}"])
        figs[f"shards.feats_seq_read_speedup_vs_hf_{size}"] = Fig(
            r["seq_hf"].wall_s / r["seq_speechtok"].wall_s, timing=r["seq_speechtok"],
            peers=[f"shards.feats_seq_read_hf_wall_s_{size}"])
        what = (f"{ROWS[size]} rows x {SIZES[size]} x {DIM} float16 ({mb:.0f} MB), fsync on for all, wall, "
                f"best of {REPEATS} interleaved")
        notes[f"shards.feats_write_speedup_vs_shar_wall{sfx}"] = f"Shar / speechtok wall s; {what}"
        notes[f"shards.feats_write_speedup_vs_shar_cpu_{size}"] = "the same on CPU s"
        notes[f"shards.feats_write_speedup_vs_hf_wall_{size}"] = f"HF save_to_disk + fsync / speechtok; {what}"
        notes[f"shards.feats_write_mb_s_{size}"] = (f"speechtok ShardWriter wall MB/s incl. sha256 + fsync + index; "
                                                    f"{what}")
        notes[f"shards.feats_rand_read_speedup_vs_hf_{size}"] = (
            f"{READ[size]} random rows ({rmb:.0f} MB), speechtok with sha256 on open / HF, wall, page cache warm")
        notes[f"shards.feats_seq_read_speedup_vs_shar_{size}"] = (
            f"first {READ[size]} rows in order ({rmb:.0f} MB), speechtok (sha256 on open) / "
            f"Shar from_shar + load_custom, wall")
        notes[f"shards.feats_seq_read_speedup_vs_hf_{size}"] = "the same rows in order, HF load_from_disk numpy format"
    head = res[HEADLINE]["write_speechtok"]
    head_mb = ROWS[HEADLINE] * SIZES[HEADLINE] * DIM * 2 / 1e6
    figs["shards.feats_write_over_fsync_floor"] = Fig(floor / (head_mb / head.wall_s), timing=head,
                                                      peers=["shards.floor_fsync_write_mb_s"])
    notes["shards.feats_write_over_fsync_floor"] = (f"fsync'd write floor MB/s / speechtok write MB/s (wall), "
                                                    f"{HEADLINE} rows; 1.0 = at the floor")
    figs["shards.rss_ratio_10x"] = ratio
    notes["shards.rss_ratio_10x"] = (f"peak RSS (VmHWM) writing 200k vs 20k token rows, fresh processes: "
                                     f"{rss_big:.0f} / {rss_small:.0f} MiB (after imports {rss_base:.0f} MiB)")
    if os.environ.get("BENCH_SHARDS_QUICK") == "1":
        for k, v in figs.items():
            print(f"  {k:50s} {v.value if isinstance(v, Fig) else v:.4g}")
        return
    old = ["shards.write_mb_s", "shards.read_mb_s", "shards.write_speedup_vs_shar", "shards.write_speedup_vs_hf",
           "shards.read_speedup_vs_shar", "shards.read_speedup_vs_hf", "shards.feats_write_mb_s",
           "shards.feats_read_mb_s", "shards.feats_write_speedup_vs_shar", "shards.feats_write_speedup_vs_hf",
           "shards.feats_read_speedup_vs_shar", "shards.feats_read_speedup_vs_hf", "shards.read_mb_s_nochecksum",
           "shards.feats_read_mb_s_nochecksum", "shards.zstd_read_slowdown", "shards.zstd_size_ratio"]
    record(figs, notes, retire=old, settings={"dim": DIM, "frames_per_row": SIZES, "rows": ROWS, "read_rows": READ,
                                  "shards": "each library's default size", "repeats": REPEATS,
                                  "durability": "fsync all"},
           threads=1, code=CODE)


if __name__ == "__main__":
    main()
