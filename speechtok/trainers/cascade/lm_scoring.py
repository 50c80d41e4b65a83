"""Language-model scores of hypothesis texts: any Hugging Face causal LM, or an ARPA/binary 3-gram.

Both score the *normalised* text (`speechtok.trainers.metrics.normalize_text`), so that two
hypotheses differing only in case or punctuation get the same LM score and the AM decides
between them, and both include the end of the sentence:

- `HFCausalLMScorer`: log p(<bos> t_1 .. t_n <eos>) = sum_i log p(t_i | t_<i) + log p(<eos> | t),
  ``num_tokens`` = n + 1; texts are batched (right padding + attention mask), with a cache.
- `NGramScorer`: PocketSphinx's `NGramModel` (the bundled en-us 3-gram by default), over
  ``<s> w_1 .. w_n </s>``, converted from its log base 1.0001 to natural log; a word the LM
  does not know costs `oov_logprob`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pocketsphinx
import torch

from speechtok import hub
from speechtok.errors import ConfigError
from speechtok.models.nbest import NBestList
from speechtok.trainers.cascade.rescoring import LMScore
from speechtok.trainers.data import pad_1d
from speechtok.trainers.llm import load_causal_lm, special_ids
from speechtok.trainers.metrics import normalize_text


class TextScorer(Protocol):
    """Scores texts; `score` returns one `LMScore` per text, in order."""

    def score(self, texts: Sequence[str]) -> list[LMScore]: ...


def score_nbests(scorer: TextScorer, nbests: Sequence[NBestList]) -> list[list[LMScore]]:
    """LM scores of every hypothesis of every list (each distinct text scored once)."""
    scores = scorer.score([h.text for nb in nbests for h in nb.hyps])
    ends = np.cumsum([len(nb.hyps) for nb in nbests], dtype=np.int64)
    return [scores[int(e) - len(nb.hyps) : int(e)] for nb, e in zip(nbests, ends, strict=True)]


class HFCausalLMScorer:
    """Sentence log-probabilities under a local Hugging Face causal LM (``save_pretrained`` dir).

    Args:
        model_dir: a directory with the model and its tokenizer.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        batch_size: texts per forward pass (sorted by length to limit padding).
        normalize: score `normalize_text(text)` instead of `text`.
    """

    def __init__(self, model_dir: Path, *, device: str = "cpu", batch_size: int = 32, normalize: bool = True) -> None:
        from transformers import AutoTokenizer  # lazy: transformers takes seconds to import

        if batch_size < 1:
            raise ConfigError("batch_size", batch_size, "must be >= 1")
        if not Path(model_dir).is_dir():
            raise ConfigError("model_dir", str(model_dir), "must be a local Hugging Face model directory")
        self.torch = torch
        self.device = torch.device(device)
        self.tokenizer = hub.from_pretrained(AutoTokenizer, str(model_dir))
        model: Any = load_causal_lm(model_dir)
        self.model = model.to(self.device).eval()
        self.batch_size = batch_size
        self.normalize = normalize
        self.bos, self.eos, self.pad = special_ids(self.tokenizer, f"{model_dir} tokenizer", "sentence scores need one")
        self._cache: dict[str, LMScore] = {}

    def _ids(self, text: str) -> list[int]:
        body = self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
        return [self.bos, *body, self.eos]

    def score(self, texts: Sequence[str]) -> list[LMScore]:
        """One `LMScore` per text (natural log; `num_tokens` counts the eos)."""
        torch = self.torch
        keys = [normalize_text(t) if self.normalize else t for t in texts]
        todo = sorted({k for k in keys if k not in self._cache}, key=lambda k: (len(k), k))
        encoded = [(k, self._ids(k)) for k in todo]
        encoded.sort(key=lambda x: len(x[1]))
        for start in range(0, len(encoded), self.batch_size):
            chunk = encoded[start : start + self.batch_size]
            batch, lengths = pad_1d([np.asarray(ids, np.int64) for _, ids in chunk], self.pad)  # (B, T), (B,)
            ids_t = batch.to(self.device)  # (B, T)
            mask_t = (torch.arange(batch.shape[1])[None] < lengths[:, None]).long().to(self.device)  # (B, T)
            with torch.inference_mode():
                logits = self.model(input_ids=ids_t, attention_mask=mask_t).logits  # (B, T, V)
                logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # (B, T-1, V)
                tgt = logp.gather(-1, ids_t[:, 1:, None])[..., 0]  # (B, T-1)
                tgt = (tgt * mask_t[:, 1:]).sum(-1).cpu().numpy()  # (B,)
            for i, (k, ids) in enumerate(chunk):
                self._cache[k] = LMScore(logprob=float(tgt[i]), num_tokens=len(ids) - 1)
        return [self._cache[k] for k in keys]


def default_ngram_path() -> Path:
    """The en-us 3-gram LM bundled with the `pocketsphinx` wheel."""
    return Path(pocketsphinx.get_model_path()) / "en-us" / "en-us.lm.bin"


class NGramScorer:
    """Sentence log-probabilities under an n-gram LM read by PocketSphinx (ARPA or binary).

    Args:
        lm_path: the LM file; default `default_ngram_path()`.
        oov_logprob: natural-log cost of a word absent from the LM's vocabulary.
        normalize: score `normalize_text(text)` instead of `text`.
    """

    def __init__(self, lm_path: Path | None = None, *, oov_logprob: float = -20.0, normalize: bool = True) -> None:
        path = Path(lm_path) if lm_path is not None else default_ngram_path()
        if not path.exists():
            raise ConfigError("lm_path", str(path), "must be an existing ARPA or binary LM file")
        if oov_logprob >= 0:
            raise ConfigError("oov_logprob", oov_logprob, "must be < 0 (a natural-log probability)")
        self.logmath = pocketsphinx.LogMath()
        self.lm = pocketsphinx.NGramModel(pocketsphinx.Config(loglevel="ERROR"), self.logmath, os.fspath(path))
        self.order = 3
        self.oov_logprob = oov_logprob
        self.normalize = normalize
        self._zero = self.logmath.get_zero()

    def _word_logprob(self, word: str, history: list[str]) -> float:
        # PocketSphinx takes the word first, then its history most recent first.
        ctx = [word, *reversed(history[-(self.order - 1) :])]
        raw = self.lm.prob(ctx)
        if raw <= self._zero // 2:
            return self.oov_logprob
        return float(self.logmath.log_to_ln(raw))

    def score(self, texts: Sequence[str]) -> list[LMScore]:
        """One `LMScore` per text; `num_tokens` = words + 1 (``</s>``)."""
        out = []
        for text in texts:
            words = (normalize_text(text) if self.normalize else text).split()
            hist = ["<s>"]
            total = 0.0
            for w in [*words, "</s>"]:
                total += self._word_logprob(w, hist)
                hist.append(w)
            out.append(LMScore(logprob=total, num_tokens=len(words) + 1))
        return out
