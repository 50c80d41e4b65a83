"""The torch Whisper read from CTranslate2 files, checked against CTranslate2 itself.

`check_against_ct2` runs both runtimes on the same log-mel windows and reports the largest
absolute difference of the encoder's final states and whether greedy transcripts (token ids)
are identical, utterance by utterance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from speechtok.models.whisper_ct2 import load_whisper_ct2, read_specials
from speechtok.models.whisper_greedy import greedy_ids, prompt_ids
from speechtok.models.whisper_nbest import log_mel


@dataclass(frozen=True)
class Agreement:
    """Per-utterance results of `check_against_ct2`.

    Attributes:
        max_abs_diff: largest |CTranslate2 - torch| encoder state per utterance (float32).
        same_ids: whether greedy token ids are identical per utterance.
        ct2_ids, torch_ids: the greedy ids of each runtime.
    """

    max_abs_diff: list[float]
    same_ids: list[bool]
    ct2_ids: list[list[int]]
    torch_ids: list[list[int]]

    @property
    def greedy_agreement(self) -> float:
        """Fraction of utterances whose greedy transcripts are identical."""
        return sum(self.same_ids) / max(len(self.same_ids), 1)


def check_against_ct2(model_dir: Path, waves: Sequence[np.ndarray], *, threads: int = 1,
                      max_new_tokens: int = 200) -> Agreement:
    """Encoder states and greedy ids of CTranslate2 and of `load_whisper_ct2(model_dir)` on `waves`.

    Args:
        model_dir: a CTranslate2 Whisper directory.
        waves: 16 kHz mono float32 `(S,)` signals, each at most 30 s.
        threads: CTranslate2 intra-op threads.
    """
    # lazy: ctranslate2 only when decoding
    import ctranslate2

    ct2 = ctranslate2.models.Whisper(str(model_dir), device="cpu", intra_threads=threads)
    model = load_whisper_ct2(model_dir)
    specials = read_specials(model_dir)
    prompt = prompt_ids(model, specials)
    diffs, same, ct2_all, torch_all = [], [], [], []
    for wave in waves:
        feats = log_mel(wave, model.config.num_mel_bins)[None]  # (1, n_mels, 3000)
        view = ctranslate2.StorageView.from_array(feats)
        ct2_states = np.asarray(ct2.encode(view, to_cpu=True))  # (1, 1500, D)
        with torch.no_grad():
            states = model.model.encoder(torch.from_numpy(feats)).last_hidden_state.numpy()
        diffs.append(float(np.abs(ct2_states - states).max()))
        res = ct2.generate(view, [prompt], beam_size=1, max_length=len(prompt) + max_new_tokens)
        ct2_ids = [t for t in res[0].sequences_ids[0] if t != specials.eot]
        torch_ids = greedy_ids(model, torch.from_numpy(feats), prompt, eot=specials.eot,
                               max_new_tokens=max_new_tokens)[0]
        same.append(ct2_ids == torch_ids)
        ct2_all.append(ct2_ids)
        torch_all.append(torch_ids)
    return Agreement(max_abs_diff=diffs, same_ids=same, ct2_ids=ct2_all, torch_ids=torch_all)
