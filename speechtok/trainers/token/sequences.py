"""Training sequences for speech-token LMs, as ids of a `VocabSpec`.

Formats (markers are the spec's special tokens; `[...]` marks the positions the loss is on):

    unit LM   <|unitlm|> <|speech|> [u1 ... uT <|eos|>]                       (GSLM, TWIST)
    text LM   <|textlm|> <|text|>   [w1 ... wN <|eos|>]
    ASR       <|asr|> <|speech|> u1 ... uT <|text|> [w1 ... wN <|eos|>]       (VoxtLM)
    TTS       <|tts|> <|text|> w1 ... wN <|speech|> [u1 ... uT <|eos|>]       (VoxtLM)
    interleaved  <|text|> w... <|speech|> u... <|text|> w... ... [all] <|eos|> (Spirit-LM)

Multi-codebook codes `(T, Q)`: `flatten_codes` (t-major, Q ids per frame), `delay_pattern`
(MusicGen: codebook q shifted right by q steps, padded with `<|pad_code|>`), `valle_split`
(VALL-E: codebook 0 as an AR sequence, codebooks 1..Q-1 as NAR targets).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from speechtok.errors import ConfigError, InputError
from speechtok.tokenizers.units import dedup as dedup_runs
from speechtok.tokenizers.vocab import VocabSpec

Word = tuple[str, float, float]  # (word, start seconds, duration seconds)


@dataclass(frozen=True)
class TokenSequence:
    """One training sequence.

    Attributes:
        ids: `(L,)` int64 LLM ids.
        loss_mask: `(L,)` bool; True where the token is a prediction target.
        task: "unitlm" | "textlm" | "asr" | "tts" | "interleaved".
    """

    ids: np.ndarray
    loss_mask: np.ndarray
    task: str

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def _seq(parts: Sequence[tuple[np.ndarray | list[int], bool]], task: str) -> TokenSequence:
    ids = np.concatenate([np.asarray(p, dtype=np.int64) for p, _ in parts])
    mask = np.concatenate([np.full(len(p), flag, dtype=bool) for p, flag in parts])
    return TokenSequence(ids=ids, loss_mask=mask, task=task)


def _units(spec: VocabSpec, name: str, units: np.ndarray, dedup: bool) -> np.ndarray:
    u = dedup_runs(units)[0] if dedup else np.asarray(units)
    return spec.unit_ids(name, u)


def _text(spec: VocabSpec, text_ids: Sequence[int] | np.ndarray) -> np.ndarray:
    t = np.asarray(text_ids, dtype=np.int64)
    spec.check_ids(t)
    if t.size and (t.min() < 0 or t.max() >= spec.text_size):
        raise InputError("text_ids", f"id {int(t.max())} is outside the text range [0, {spec.text_size})")
    return t


def unit_lm_sequence(spec: VocabSpec, name: str, units: np.ndarray, *, dedup: bool = False) -> TokenSequence:
    """Speech-only sequence of `(T,)` units (deduplicated when `dedup`)."""
    s = spec.special_id
    return _seq([([s("<|unitlm|>"), s("<|speech|>")], False), (_units(spec, name, units, dedup), True),
                 ([s("<|eos|>")], True)], "unitlm")


def text_lm_sequence(spec: VocabSpec, text_ids: Sequence[int] | np.ndarray) -> TokenSequence:
    """Text-only sequence of base-tokenizer ids."""
    s = spec.special_id
    return _seq([([s("<|textlm|>"), s("<|text|>")], False), (_text(spec, text_ids), True), ([s("<|eos|>")], True)],
                "textlm")


def asr_sequence(spec: VocabSpec, name: str, units: np.ndarray, text_ids: Sequence[int] | np.ndarray, *,
                 dedup: bool = True) -> TokenSequence:
    """Units -> text; the loss is on the transcript and `<|eos|>`. `asr_prompt` is its prefix."""
    s = spec.special_id
    prompt = asr_prompt(spec, name, units, dedup=dedup)
    return _seq([(prompt, False), (_text(spec, text_ids), True), ([s("<|eos|>")], True)], "asr")


def asr_prompt(spec: VocabSpec, name: str, units: np.ndarray, *, dedup: bool = True) -> np.ndarray:
    """`<|asr|> <|speech|> units <|text|>`: what generation starts from, `(L,)` int64."""
    s = spec.special_id
    return np.concatenate([[s("<|asr|>"), s("<|speech|>")], _units(spec, name, units, dedup),
                           [s("<|text|>")]]).astype(np.int64)


def tts_sequence(spec: VocabSpec, name: str, units: np.ndarray, text_ids: Sequence[int] | np.ndarray, *,
                 dedup: bool = True) -> TokenSequence:
    """Text -> units; the loss is on the units and `<|eos|>`. `tts_prompt` is its prefix."""
    return _seq([(tts_prompt(spec, text_ids), False), (_units(spec, name, units, dedup), True),
                 ([spec.special_id("<|eos|>")], True)], "tts")


def tts_prompt(spec: VocabSpec, text_ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """`<|tts|> <|text|> text <|speech|>`: what unit generation starts from, `(L,)` int64."""
    s = spec.special_id
    return np.concatenate(
        [[s("<|tts|>"), s("<|text|>")], _text(spec, text_ids), [s("<|speech|>")]]).astype(np.int64)


# --------------------------------------------------------------------------- interleaving
@dataclass(frozen=True)
class Span:
    """One modality span of an interleaved sequence.

    Attributes:
        modality: "text" or "speech".
        words: `[first, stop)` word indices covered.
        frames: `[first, stop)` unit frames covered (speech spans; `(0, 0)` for text spans).
        tokens: `[first, stop)` positions in the sequence's `ids`, after the span's marker.
    """

    modality: str
    words: tuple[int, int]
    frames: tuple[int, int]
    tokens: tuple[int, int]


def choose_spans(num_words: int, *, speech_ratio: float, mean_span_words: float,
                 rng: np.random.Generator) -> list[tuple[str, int, int]]:
    """Modality spans over `num_words` words: a two-state Markov chain that switches only at word
    edges, with mean speech span `2 * mean_span_words * speech_ratio` and mean text span
    `2 * mean_span_words * (1 - speech_ratio)` words, so the expected share of speech words is
    `speech_ratio`. Returns `[(modality, first_word, stop_word), ...]` covering all words."""
    if not 0.0 <= speech_ratio <= 1.0:
        raise ConfigError("speech_ratio", speech_ratio, "must be in [0, 1]")
    if mean_span_words < 1:
        raise ConfigError("mean_span_words", mean_span_words, "must be >= 1")
    if num_words == 0:
        return []
    leave = {"speech": min(1.0, 1.0 / max(2 * mean_span_words * speech_ratio, 1e-9)),
             "text": min(1.0, 1.0 / max(2 * mean_span_words * (1 - speech_ratio), 1e-9))}
    mod = "speech" if rng.random() < speech_ratio else "text"
    spans: list[tuple[str, int, int]] = []
    first = 0
    for i in range(1, num_words):
        if rng.random() < leave[mod]:
            spans.append((mod, first, i))
            mod, first = ("text" if mod == "speech" else "speech"), i
    spans.append((mod, first, num_words))
    return spans


def interleave_sequence(spec: VocabSpec, name: str, units: np.ndarray, frame_rate: float, words: Sequence[Word],
                        encode_text: Callable[[str], list[int]], *, speech_ratio: float = 0.5,
                        mean_span_words: float = 3.0, dedup: bool = False,
                        rng: np.random.Generator) -> tuple[TokenSequence, list[Span]]:
    """Spirit-LM style: text and speech alternate at word boundaries.

    Args:
        units: `(T,)` frame-level (not deduplicated) units at `frame_rate` per second.
        words: word alignment, `(word, start_s, duration_s)` in time order.
        encode_text: text -> base-tokenizer ids (no BOS/EOS).
        dedup: deduplicate units inside each speech span.
    A speech span over words `[i, j)` takes the frames from word i's start (frame 0 for the first
    word) to word j's start (the end of the units for the last word), so silences go with the
    speech before them and no frame is lost. A text span is its words joined by spaces.
    """
    u = np.asarray(units)
    for k, (w, start, dur) in enumerate(words):
        if start < 0 or dur < 0 or (k and start < words[k - 1][1]):
            raise InputError(f"word {k} {w!r}", f"alignment ({start}, {dur}) is negative or out of order")
    edges = [min(u.size, int(round(start * frame_rate))) for _, start, _ in words]
    s = spec.special_id
    parts: list[np.ndarray] = []
    spans: list[Span] = []
    pos = 0
    for mod, i, j in choose_spans(len(words), speech_ratio=speech_ratio, mean_span_words=mean_span_words, rng=rng):
        if mod == "speech":
            f0 = 0 if i == 0 else edges[i]
            f1 = u.size if j == len(words) else edges[j]
            body = _units(spec, name, u[f0:f1], dedup)
            marker, frames = s("<|speech|>"), (f0, f1)
        else:
            body = _text(spec, encode_text(" ".join(w for w, _, _ in words[i:j])))
            marker, frames = s("<|text|>"), (0, 0)
        parts += [np.array([marker], dtype=np.int64), body]
        spans.append(Span(modality=mod, words=(i, j), frames=frames, tokens=(pos + 1, pos + 1 + body.size)))
        pos += 1 + body.size
    parts.append(np.array([s("<|eos|>")], dtype=np.int64))
    ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return TokenSequence(ids=ids, loss_mask=np.ones(ids.size, dtype=bool), task="interleaved"), spans


# --------------------------------------------------------------------------- codebooks
def flatten_codes(spec: VocabSpec, codec: str, codes: np.ndarray) -> np.ndarray:
    """`(T, Q)` codes -> `(T*Q,)` ids, frame-major: q0 t0, q1 t0, ..., q0 t1, ..."""
    return spec.code_ids(codec, codes).reshape(-1)


def unflatten_codes(spec: VocabSpec, codec: str, ids: np.ndarray) -> np.ndarray:
    """Inverse of `flatten_codes`: `(T*Q,)` ids -> `(T, Q)` codes."""
    num_q, _ = spec.codes[codec]
    i = np.asarray(ids, dtype=np.int64)
    if i.size % num_q:
        raise InputError("ids", f"length {i.size} is not a multiple of the {num_q} codebooks")
    return spec.to_codes(codec, i.reshape(-1, num_q))


def delay_pattern(spec: VocabSpec, codec: str, codes: np.ndarray) -> np.ndarray:
    """MusicGen delay: `(T, Q)` codes -> `(T + Q - 1, Q)` ids; column q is shifted down by q steps
    and the empty cells hold `<|pad_code|>`. Step t predicts codebook q of frame t - q."""
    ids = spec.code_ids(codec, codes)
    t, q = ids.shape
    out = np.full((t + q - 1, q), spec.special_id("<|pad_code|>"), dtype=np.int64)
    for k in range(q):
        out[k : k + t, k] = ids[:, k]
    return out


def undelay_pattern(spec: VocabSpec, codec: str, ids: np.ndarray) -> np.ndarray:
    """Inverse of `delay_pattern`: `(T + Q - 1, Q)` ids -> `(T, Q)` codes."""
    i = np.asarray(ids, dtype=np.int64)
    steps, q = i.shape
    t = steps - q + 1
    if t < 0:
        raise InputError("ids", f"{steps} steps cannot hold {q} delayed codebooks")
    return spec.to_codes(codec, np.stack([i[k : k + t, k] for k in range(q)], axis=1))


@dataclass(frozen=True)
class ValleSplit:
    """VALL-E targets: `ar` `(T,)` ids of codebook 0; `nar` `(T, Q-1)` ids of codebooks 1..Q-1."""

    ar: np.ndarray
    nar: np.ndarray


def valle_split(spec: VocabSpec, codec: str, codes: np.ndarray) -> ValleSplit:
    """`(T, Q)` codes -> the AR first codebook and the NAR rest (each in its own id range)."""
    ids = spec.code_ids(codec, codes)
    return ValleSplit(ar=ids[:, 0].copy(), nar=ids[:, 1:].copy())
