"""Shard write / random-read throughput vs lhotse Shar and Hugging Face `datasets`; RSS at 10x.

Data (1 thread, page cache warm for every reader, as right after writing):
- tokens: 100,000 rows x 500 uint16 tokens (100 MB payload);
- feats: FEAT_ROWS rows x 500 frames x 768 float16 (FEAT_ROWS=600: 461 MB payload, chosen to keep
  the three writers under ~4 min and RAM under ~3 GB on this shared 2-core machine).

Writers: speechtok `ShardWriter` (uncompressed IPC, 10k-row shards, sha256 + fsync + index
commit per shard); lhotse `SharWriter(fields={"units": "numpy"})` with the array attached by
`cut.attach_tensor(..., temporal_dim=0)` (Shar's way to store custom arrays; cut objects are
built outside the timed block); HF `Dataset.from_dict(...).save_to_disk`.

Readers: speechtok `ShardDataset` (memory map, sha256 of each file on first open: the default;
also measured with ``checksum=False``) and HF
`load_from_disk(...).with_format("numpy")` both read READ_ROWS rows at random indices (opening
included); Shar has no random access (tar streams), so it reads the first READ_ROWS cuts
sequentially with `CutSet.from_shar` + `load_custom` (its best case). Every reader touches
every byte it returns (`view(uint16).max()`), so lazy memory maps are not flattered.

Figures use CPU time (user+sys; the machine is shared), wall times are in the notes. Payload
MB = rows x frames x width x 2 bytes. `shards.rss_ratio_10x`: peak RSS of a fresh process
writing 200k token rows / one writing 20k rows (rows generated on the fly).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import peak_rss_mb, record, set_threads, timed

TOK_ROWS, TOK_LEN = 100_000, 500
FEAT_ROWS, FEAT_LEN, FEAT_DIM = 600, 500, 768
READ_ROWS = {"tokens": 20_000, "feats": 300}
SHARD_ROWS = {"tokens": 10_000, "feats": 100}


def _meta(kind: str) -> Any:
    from speechtok.pipeline.shard_schema import GroupMeta

    if kind == "tokens":
        return GroupMeta(group="units.bench", kind="units", stage="bench", stage_version="1",
                         fingerprint="bench", vocab_size=1000, frame_rate=50.0)
    return GroupMeta(group="feats.bench", kind="feats", stage="bench", stage_version="1",
                     fingerprint="bench", dim=FEAT_DIM, dtype="float16", frame_rate=50.0)


def _data(kind: str) -> tuple[list[str], list[np.ndarray]]:
    rng = np.random.default_rng(0)
    if kind == "tokens":
        flat = rng.integers(0, 1000, TOK_ROWS * TOK_LEN, dtype=np.uint16)
        arrs = list(flat.reshape(TOK_ROWS, TOK_LEN))
    else:
        arrs = [rng.standard_normal((FEAT_LEN, FEAT_DIM), dtype=np.float32).astype(np.float16)
                for _ in range(FEAT_ROWS)]
    return [f"cut-{i:06d}" for i in range(len(arrs))], arrs


def _touch(x: Any) -> int:
    return int(np.asarray(x).view(np.uint16).max())


def _col(kind: str) -> str:
    return "units" if kind == "tokens" else "feats"


def write_speechtok(d: Path, kind: str, ids: list[str], arrs: list[np.ndarray],
                    compression: str | None = None) -> None:
    from speechtok.pipeline.shards import ShardWriter

    col = _col(kind)
    with ShardWriter(d, _meta(kind), max_rows=SHARD_ROWS[kind], compression=compression) as w:
        for i, a in zip(ids, arrs, strict=True):
            w.write({"id": i, col: a})


def read_speechtok(d: Path, kind: str, idx: np.ndarray, checksum: bool = True) -> int:
    from speechtok.pipeline.shard_reader import ShardDataset

    group = _meta(kind).group
    ds = ShardDataset(d, (group,), [group], checksum=checksum)
    s = 0
    for i in idx:
        s += _touch(ds[int(i)][group])
    return s


def write_shar(d: Path, kind: str, cuts: list[Any], arrs: list[np.ndarray]) -> None:
    from lhotse.shar import SharWriter

    d.mkdir(parents=True, exist_ok=True)
    with SharWriter(str(d), fields={"units": "numpy"}, shard_size=SHARD_ROWS[kind]) as w:
        for c, a in zip(cuts, arrs, strict=True):
            w.write(c.attach_tensor("units", a, frame_shift=0.02, temporal_dim=0))


def read_shar(d: Path, n: int) -> int:
    from lhotse import CutSet

    s = 0
    for k, c in enumerate(CutSet.from_shar(in_dir=str(d))):
        if k >= n:
            break
        s += _touch(c.load_custom("units"))
    return s


def write_hf(d: Path, ids: list[str], arrs: list[np.ndarray]) -> None:
    import datasets

    datasets.disable_progress_bars()
    datasets.Dataset.from_dict({"id": ids, "x": arrs}).save_to_disk(str(d))


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

    ids, arrs = ["a", "b"], [np.zeros(4, np.uint16), np.ones(4, np.uint16)]
    write_speechtok(root / "warm_st", "tokens", ids, arrs)
    read_speechtok(root / "warm_st", "tokens", np.arange(2))
    write_hf(root / "warm_hf", ids, arrs)
    read_hf(root / "warm_hf", np.arange(2))
    cuts = [MonoCut(id=i, start=0.0, duration=1.0, channel=0) for i in ids]
    write_shar(root / "warm_shar", "tokens", cuts, arrs)
    read_shar(root / "warm_shar", 2)


def run_kind(root: Path, kind: str) -> dict[str, dict[str, float]]:
    from lhotse import MonoCut

    ids, arrs = _data(kind)
    mb = sum(a.nbytes for a in arrs) / 1e6
    n_read = READ_ROWS[kind]
    idx = np.random.default_rng(1).permutation(len(ids))[:n_read]
    read_mb = sum(arrs[int(i)].nbytes for i in idx) / 1e6
    seq_mb = sum(a.nbytes for a in arrs[:n_read]) / 1e6
    res: dict[str, dict[str, float]] = {}

    def measure(name: str, mbytes: float, fn: Any, *args: Any) -> None:
        with timed() as t:
            fn(*args)
        res[name] = {"cpu_s": t.cpu_s, "wall_s": t.wall_s, "mb": mbytes,
                     "mb_s_cpu": mbytes / max(t.cpu_s, 1e-9), "mb_s_wall": mbytes / max(t.wall_s, 1e-9)}
        print(f"  {kind:6s} {name:18s} {mbytes:8.1f} MB  cpu {t.cpu_s:7.2f} s  wall {t.wall_s:7.2f} s"
              f"  {res[name]['mb_s_cpu']:8.1f} MB/s (cpu)", flush=True)

    measure("write_speechtok", mb, write_speechtok, root / f"st_{kind}", kind, ids, arrs)
    measure("read_speechtok", read_mb, read_speechtok, root / f"st_{kind}", kind, idx)
    measure("read_nochecksum", read_mb, read_speechtok, root / f"st_{kind}", kind, idx, False)
    measure("write_zstd", mb, write_speechtok, root / f"stz_{kind}", kind, ids, arrs, "zstd")
    measure("read_zstd", read_mb, read_speechtok, root / f"stz_{kind}", kind, idx)
    res["sizes"] = {"raw": _du(root / f"st_{kind}"), "zstd": _du(root / f"stz_{kind}")}
    shutil.rmtree(root / f"stz_{kind}")
    measure("write_hf", mb, write_hf, root / f"hf_{kind}", ids, arrs)
    measure("read_hf", read_mb, read_hf, root / f"hf_{kind}", idx)
    shutil.rmtree(root / f"hf_{kind}")
    dur = arrs[0].shape[0] * 0.02
    cuts = [MonoCut(id=i, start=0.0, duration=dur, channel=0) for i in ids]
    measure("write_shar", mb, write_shar, root / f"shar_{kind}", kind, cuts, arrs)
    measure("read_shar_seq", seq_mb, read_shar, root / f"shar_{kind}", n_read)
    shutil.rmtree(root / f"shar_{kind}")
    shutil.rmtree(root / f"st_{kind}")
    return res


def _du(d: Path) -> float:
    return sum(p.stat().st_size for p in d.rglob("*") if p.is_file()) / 1e6


def rss_child(rows: int, out: str) -> None:
    """Writes `rows` token rows generated on the fly; prints peak RSS (MiB) as JSON."""
    from speechtok.pipeline.shards import ShardWriter

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
    root = Path(tempfile.mkdtemp(prefix="bench_shards_"))
    try:
        warm_up(root)
        tok = run_kind(root, "tokens")
        feat = run_kind(root, "feats")
        ratio, rss_small, rss_big, rss_base = rss_ratio(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    def sp(res: dict, a: str, b: str) -> float:
        return res[a]["mb_s_cpu"] / res[b]["mb_s_cpu"]

    figs = {
        "shards.write_mb_s": tok["write_speechtok"]["mb_s_cpu"],
        "shards.read_mb_s": tok["read_speechtok"]["mb_s_cpu"],
        "shards.write_speedup_vs_shar": sp(tok, "write_speechtok", "write_shar"),
        "shards.write_speedup_vs_hf": sp(tok, "write_speechtok", "write_hf"),
        "shards.read_speedup_vs_shar": sp(tok, "read_speechtok", "read_shar_seq"),
        "shards.read_speedup_vs_hf": sp(tok, "read_speechtok", "read_hf"),
        "shards.feats_write_mb_s": feat["write_speechtok"]["mb_s_cpu"],
        "shards.feats_read_mb_s": feat["read_speechtok"]["mb_s_cpu"],
        "shards.feats_write_speedup_vs_shar": sp(feat, "write_speechtok", "write_shar"),
        "shards.feats_write_speedup_vs_hf": sp(feat, "write_speechtok", "write_hf"),
        "shards.feats_read_speedup_vs_shar": sp(feat, "read_speechtok", "read_shar_seq"),
        "shards.feats_read_speedup_vs_hf": sp(feat, "read_speechtok", "read_hf"),
        "shards.read_mb_s_nochecksum": tok["read_nochecksum"]["mb_s_cpu"],
        "shards.feats_read_mb_s_nochecksum": feat["read_nochecksum"]["mb_s_cpu"],
        "shards.zstd_read_slowdown": tok["read_speechtok"]["mb_s_cpu"] / tok["read_zstd"]["mb_s_cpu"],
        "shards.zstd_size_ratio": tok["sizes"]["zstd"] / tok["sizes"]["raw"],
        "shards.rss_ratio_10x": ratio,
    }

    def w(res: dict, k: str) -> str:
        return f"{res[k]['mb_s_wall']:.0f} MB/s wall"

    notes = {
        "shards.write_mb_s": f"100k x 500 uint16 (100 MB), CPU-time MB/s incl. sha256+fsync+index; {w(tok, 'write_speechtok')}; machine IPC write ~890",
        "shards.read_mb_s": f"20k random rows, mmap + sha256 on open, CPU-time; {w(tok, 'read_speechtok')}; machine mmap read ~6000",
        "shards.write_speedup_vs_shar": f"vs lhotse SharWriter numpy field ({tok['write_shar']['mb_s_cpu']:.0f} MB/s cpu)",
        "shards.write_speedup_vs_hf": f"vs HF from_dict+save_to_disk ({tok['write_hf']['mb_s_cpu']:.0f} MB/s cpu)",
        "shards.read_speedup_vs_shar": f"our random vs Shar sequential (no random access) ({tok['read_shar_seq']['mb_s_cpu']:.0f} MB/s cpu)",
        "shards.read_speedup_vs_hf": f"random rows, HF load_from_disk numpy format ({tok['read_hf']['mb_s_cpu']:.0f} MB/s cpu)",
        "shards.feats_write_mb_s": f"{FEAT_ROWS} x 500 x 768 float16 ({feat['write_speechtok']['mb']:.0f} MB); {w(feat, 'write_speechtok')}",
        "shards.feats_read_mb_s": f"{READ_ROWS['feats']} random rows; {w(feat, 'read_speechtok')}",
        "shards.feats_write_speedup_vs_shar": f"Shar {feat['write_shar']['mb_s_cpu']:.0f} MB/s cpu",
        "shards.feats_write_speedup_vs_hf": f"HF {feat['write_hf']['mb_s_cpu']:.0f} MB/s cpu",
        "shards.feats_read_speedup_vs_shar": f"Shar sequential {feat['read_shar_seq']['mb_s_cpu']:.0f} MB/s cpu",
        "shards.feats_read_speedup_vs_hf": f"HF {feat['read_hf']['mb_s_cpu']:.0f} MB/s cpu",
        "shards.read_mb_s_nochecksum": f"as read_mb_s with checksum=False (structure checks only); {w(tok, 'read_nochecksum')}",
        "shards.feats_read_mb_s_nochecksum": f"as feats_read_mb_s with checksum=False; {w(feat, 'read_nochecksum')}",
        "shards.zstd_read_slowdown": f"tokens random read, uncompressed / zstd IPC ({tok['read_zstd']['mb_s_cpu']:.0f} MB/s cpu); feats: {feat['read_speechtok']['mb_s_cpu'] / feat['read_zstd']['mb_s_cpu']:.1f}x",
        "shards.zstd_size_ratio": f"tokens (random ids <1000) zstd/raw file size; feats {feat['sizes']['zstd'] / feat['sizes']['raw']:.2f}",
        "shards.rss_ratio_10x": f"peak RSS (VmHWM) writing 200k vs 20k token rows, fresh processes: {rss_big:.0f} / {rss_small:.0f} MiB (after imports {rss_base:.0f} MiB)",
    }
    record(figs, notes)


if __name__ == "__main__":
    main()
