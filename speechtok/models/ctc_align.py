"""Word alignments offline: CTC forced alignment with the latent family's CTC encoder.

`ctc_word_alignment(log_probs, words, encode_word, separator, frame_rate)` aligns a known
transcript to CTC posteriors (torchaudio's `forced_align`, Viterbi over the CTC graph) and
returns `[(word, start_s, duration_s)]`, the format of the shards' `alignment` column
(`[{"word", "start", "duration"}]`, see `as_alignment_column`) that Spirit-LM interleaving reads.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open

from speechtok import hub
from speechtok.config import build
from speechtok.errors import ConfigError, InputError
from speechtok.models.checkpoint import latest_checkpoint, load_model_tensors
from speechtok.models.encoder import EncoderConfig, build_encoder


def ctc_word_alignment(log_probs: torch.Tensor, words: Sequence[str], encode_word: Callable[[str], list[int]], *,
                       frame_rate: float, separator: int | None = None,
                       blank: int = 0) -> list[tuple[str, float, float]]:
    """Aligns `words` to `(T, V)` CTC log-posteriors at `frame_rate` frames per second.

    Args:
        encode_word: word -> CTC label ids (>= 1, never `blank`).
        separator: label between words (e.g. the space character), or None.
    Returns:
        `(word, start_s, duration_s)` per word, in order; a word spans from its first label's
        first frame to its last label's last frame.
    """
    # lazy: torchaudio (and torch) only on this path
    import torchaudio.functional as F

    targets: list[int] = []
    owner: list[int] = []  # word index of each target label, -1 for separators
    for k, w in enumerate(words):
        if k and separator is not None:
            targets.append(separator)
            owner.append(-1)
        labels = encode_word(w)
        if not labels or blank in labels:
            raise InputError(f"word {w!r}", f"encodes to {labels}: needs >= 1 label and no blank ({blank})")
        targets += labels
        owner += [k] * len(labels)
    lp = log_probs.float().log_softmax(-1)[None]  # (1, T, V)
    if len(targets) > lp.shape[1]:
        raise InputError("alignment", f"{len(targets)} labels do not fit in {lp.shape[1]} frames")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path, scores = F.forced_align(lp, torch.tensor([targets], dtype=torch.int32), blank=blank)
        spans = F.merge_tokens(path[0], scores[0].exp(), blank=blank)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for span, k in zip(spans, owner, strict=True):
        if k >= 0:
            first.setdefault(k, span.start)
            last[k] = span.end
    return [(w, first[k] / frame_rate, (last[k] - first[k]) / frame_rate) for k, w in enumerate(words)]


def as_alignment_column(words: Sequence[tuple[str, float, float]]) -> list[dict[str, Any]]:
    """`[(word, start, duration)]` -> the shards' alignment column value `[{word, start, duration}]`."""
    return [{"word": w, "start": float(s), "duration": float(d)} for w, s, d in words]


class CTCAligner:
    """Word alignments from a latent run's stage-1 encoder + CTC head (``RUN/stage1``).

    `align(feats, text)` -> ``[(word, start_s, duration_s)]``: the features (``(T, D)``, the
    group and frame rate the run was trained on, e.g. ``feats.whisper`` at 50 Hz) go through the
    encoder; the transcript, split on spaces, is force-aligned to the CTC posteriors. Labels are
    the run's text-tokenizer ids + 1 (0 is blank); with a character tokenizer the space between
    words is aligned too, so silences between words are not counted into them.
    """

    def __init__(self, run_dir: str | Path, *, device: str = "cpu") -> None:
        run = Path(run_dir)
        ckpt = latest_checkpoint(run / "stage1")
        if ckpt is None or not (run / "recipe.json").is_file():
            raise ConfigError("run", str(run), "must be a `speechtok train latent` run with a stage-1 checkpoint")
        # lazy: transformers takes seconds to import
        from transformers import AutoTokenizer

        recipe = json.loads((run / "recipe.json").read_text())
        self.weights = ckpt / "model.safetensors"
        self.tokenizer = hub.from_pretrained(AutoTokenizer, run / "tokenizer")
        enc_cfg = build(EncoderConfig, recipe["encoder"], "encoder")
        self.frame_rate = float(recipe["data"]["frame_rate"]) / (4.0 if enc_cfg.kind == "fbank" else 1.0)
        self.feats_group = str(recipe["data"]["feats"])
        with safe_open(str(self.weights), framework="pt") as f:
            in_dim = self._in_dim(f, enc_cfg.kind)
        self.encoder = build_encoder(enc_cfg, in_dim, len(self.tokenizer) + 1)
        load_model_tensors(self.encoder, self.weights)
        self.encoder.eval().to(device)
        self.device = device
        space = self.tokenizer(" ", add_special_tokens=False)["input_ids"]
        self.separator = space[0] + 1 if len(space) == 1 else None

    @staticmethod
    def _in_dim(f: Any, kind: str) -> int:
        if kind == "features":
            return int(f.get_slice("proj.0.weight").get_shape()[1])
        # fbank: proj's input is conv channels x (D / 4) after two stride-2 convs
        conv = f.get_slice("conv2.weight").get_shape()[0]
        proj_in = f.get_slice("proj.weight").get_shape()[1]
        return int(proj_in // conv * 4)

    def checksum(self) -> str:
        """sha256 of the encoder weights and the tokenizer files."""

        h = hashlib.sha256()
        for p in [self.weights, *sorted(Path(self.tokenizer.name_or_path).glob("*.json"))]:
            h.update(p.read_bytes())
        return h.hexdigest()

    def _labels(self, word: str) -> list[int]:
        return [i + 1 for i in self.tokenizer(word, add_special_tokens=False)["input_ids"]]

    @torch.no_grad()
    def log_probs(self, feats: Any) -> torch.Tensor:
        """`(T, D)` features of one cut -> `(T', V)` float32 CTC log-posteriors (blank = 0)."""
        x = torch.tensor(np.asarray(feats, np.float32), device=self.device)[None]
        h, hl = self.encoder(x, torch.tensor([x.shape[1]], device=self.device))
        return torch.log_softmax(self.encoder.ctc_head(h)[0, : int(hl[0])].float(), -1).cpu()

    def labels_to_text(self, labels: Sequence[int]) -> str:
        """CTC labels (text ids + 1) -> text."""
        return str(self.tokenizer.decode([int(i) - 1 for i in labels], skip_special_tokens=True))

    @torch.no_grad()
    def align(self, feats: Any, text: str) -> list[tuple[str, float, float]]:
        """`(T, D)` features of one cut + its transcript -> word alignment (seconds)."""
        words = text.split()
        if not words:
            return []
        spikes = ctc_word_alignment(self.log_probs(feats), words, self._labels, frame_rate=self.frame_rate,
                                    separator=self.separator)
        return contiguous_spans(spikes)


def contiguous_spans(words: Sequence[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """CTC spans are peaky (a word covers only its label spikes): split each gap between two
    words at its midpoint, so consecutive words touch; the first word keeps its start and the
    last its end."""
    out = []
    for k, (w, s, d) in enumerate(words):
        start = s if k == 0 else (words[k - 1][1] + words[k - 1][2] + s) / 2
        end = s + d if k == len(words) - 1 else (s + d + words[k + 1][1]) / 2
        out.append((w, round(start, 4), round(max(end - start, 0.0), 4)))
    return out
