"""The fbank stage on audio too short for one frame: quarantined ``too_short`` (it gave an empty
row that no stage reported, so k-means later called it "quarantined upstream")."""

from __future__ import annotations

import numpy as np

from speechtok.pipeline.stage import CutItem, Quarantine
from speechtok.pipeline.stage_types import build_stage


class _Cut:
    """Just what the fbank stage uses of a lhotse cut."""

    def __init__(self, cut_id: str, wave: np.ndarray) -> None:
        self.id, self.sampling_rate, self.duration = cut_id, 16000, wave.size / 16000
        self._wave = wave

    def load_audio(self) -> np.ndarray:
        return self._wave[None, :]  # (1, S)


def test_fbank_quarantines_a_cut_shorter_than_one_frame() -> None:
    stage = build_stage({"type": "fbank", "name": "fbank", "config": {"num_mel_bins": 40}})
    wave = (0.3 * np.sin(np.arange(1600) / 5.0)).astype(np.float32)
    # snip_edges=False: (S + 80) // 160 frames, so 79 samples give 0 frames and 80 give 1
    res = stage.process([CutItem(cut=_Cut("ok", wave)), CutItem(cut=_Cut("tiny", wave[:79])),
                         CutItem(cut=_Cut("one", wave[:80]))])
    assert isinstance(res[0], dict) and res[0]["feats"].shape == (10, 40)
    assert isinstance(res[1], Quarantine) and res[1].reason == "too_short" and res[1].id == "tiny"
    assert "0 frames" in res[1].detail
    assert isinstance(res[2], dict) and res[2]["feats"].shape == (1, 40)
