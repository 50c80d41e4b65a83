"""Goals the tables compare figures against, and the figures `make bench` must produce.

A missed goal is shown in the tables as MISSED; it does not fail `--check` (a stale or unpeered
figure does). Figure names are contracts (issue 15): keep them exactly.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Goal:
    """`value OP target`, e.g. ``Goal(">=", 3.0)``."""

    op: str
    target: float

    def met(self, value: float) -> bool:
        ops: dict[str, Callable[[float, float], bool]] = {
            ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
        return ops[self.op](value, self.target)

    def __str__(self) -> str:
        return f"{self.op} {self.target:g}"


GOALS: dict[str, Goal] = {
    "kmeans.speedup_vs_fairseq_mbkm": Goal(">=", 3.0),
    "kmeans.inertia_ratio": Goal("<=", 1.005),
    "fbank.speedup_vs_lhotse_store": Goal(">=", 2.5),
    "shards.feats_write_speedup_vs_shar_wall": Goal(">=", 1.5),
    "shards.feats_write_over_fsync_floor": Goal("<=", 1.3),
    "reliability.kill_resume_identical": Goal(">=", 1.0),
    "export.rss_ratio_10x": Goal("<=", 1.2),
    "mix.max_share_error": Goal("<=", 0.02),
    "mix.padding_frac": Goal("<", 0.05),
    # issue 16: the pretrained decoder at least 30% lower test WER than the scratch Llama (relative change of
    # the family's best whisper_decoder variant against its scratch run), and the latent family within 1.5x of
    # the cascade with the same backbone
    "compare.latent.whisper_decoder.rel_test_wer_vs_scratch": Goal("<=", -0.30),
    "compare.token.whisper_decoder.rel_test_wer_vs_scratch": Goal("<=", -0.30),
    "compare.latent.whisper_decoder.test_wer_vs_text": Goal("<=", 1.5),
}

# Each pattern (fnmatch) must match at least one recorded figure.
REQUIRED: tuple[str, ...] = (
    "kmeans.speedup_vs_fairseq_mbkm",
    "kmeans.inertia_ratio",
    "kmeans.speedup_equal_passes",
    "kmeans.floor_efficiency",
    "machine.sgemm_gflops_1t",
    "machine.mem_bandwidth_gb_s",
    "machine.fsync_write_mb_s",
    "fbank.speedup_vs_lhotse_store",
    "shards.feats_write_speedup_vs_shar_wall",
    "codecs.*.speedup_vs_nograd_loop",
    "compare.*.test_wer",
    "mimi.rtf_per_core",
    "xcodec.rtf_per_core",
    "cards.*.rtf_per_core",
)


def needs_peer(name: str) -> bool:
    """Whether a figure compares with a peer (speedups, `_vs_` ratios, efficiency vs a floor)."""
    leaf = name.rsplit(".", 1)[-1]
    return ("_vs_" in leaf or leaf.startswith("speedup") or "efficiency" in leaf
            or "over_floor" in leaf or leaf == "inertia_ratio")
