"""First pass of the cascade: utterances -> n-best lists with the recipe's decoder."""

from __future__ import annotations

import time

from speechtok.errors import ConfigError
from speechtok.models.nbest import NBestList, Utterance
from speechtok.models.whisper_nbest import WhisperNBest, WhisperNBestConfig
from speechtok.trainers.cascade.nbest_ctc import CTCNBest
from speechtok.trainers.cascade.nbest_sphinx import SphinxNBest, SphinxNBestConfig
from speechtok.trainers.cascade.recipe import CascadeRecipe


def decode_nbest(utts: list[Utterance], recipe: CascadeRecipe,
                 left_out: dict[str, str] | None = None) -> tuple[list[NBestList], dict[str, float]]:
    """N-best lists of `utts` with the recipe's decoder (whisper, ctc or sphinx), and the decode wall time.

    `left_out`: if given, an utterance whose audio opens but cannot be decoded (whisper, sphinx) is
    left out of the lists and its id -> reason recorded there; without it that is an `InputError`."""
    n = recipe.nbest
    t0 = time.perf_counter()
    if n.decoder == "whisper":
        if n.model_dir is None:
            raise ConfigError("nbest.model_dir", None, "must be a CTranslate2 Whisper directory")
        dec = WhisperNBest(WhisperNBestConfig(model_dir=n.model_dir, beam_size=n.beam_size,
                                              num_hypotheses=n.num_hypotheses, batch_size=n.batch_size,
                                              device=recipe.device, threads=n.threads or recipe.threads))
        lists = list(dec.decode_utterances(utts, cache=n.cache, left_out=left_out))
    elif n.decoder == "ctc":
        if n.ctc_run is None or n.shards is None:
            raise ConfigError("nbest.ctc_run/shards", None, "must both be set for decoder 'ctc'")
        lists = list(CTCNBest(n.ctc_run, n.shards, beam_size=n.beam_size, num_hypotheses=n.num_hypotheses,
                              device=recipe.device).decode_utterances(utts))
    else:
        lists = list(SphinxNBest(SphinxNBestConfig(num_hypotheses=n.num_hypotheses)).decode_utterances(
            utts, left_out=left_out))
    return lists, {"decode_wall_s": time.perf_counter() - t0}
