"""Where every token kind lives in an LLM vocabulary: text, semantic units, codebooks, markers.

Layout of the ids (one contiguous range per kind, in this order)::

    [0, text_size)                          text tokens of the base tokenizer
    [text_size, +len(special_tokens))       modality / task markers, e.g. "<|speech|>", "<|asr|>"
    next `size` ids per unit vocabulary     "<|u:km100:17|>"
    next `codebook_size` ids per codebook   "<|c:encodec:q1:512|>"

A `VocabSpec` is saved as JSON next to a model (`vocab_spec.json`), exports its tokens to a
Hugging Face tokenizer (`add_to_tokenizer`) and resizes a model's embeddings (`resize_model`).
Every mapping checks its input: an id or unit outside its range raises `InputError` naming the
value and the range, never a silent UNK.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from speechtok import atomic
from speechtok.errors import ConfigError, InputError, check_at_least

SPEC_FILE = "vocab_spec.json"
SPEC_VERSION = 1
DEFAULT_SPECIALS = (
    "<|text|>", "<|speech|>", "<|asr|>", "<|tts|>", "<|textlm|>", "<|unitlm|>",
    "<|eos|>", "<|pad_code|>",
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class TokenRange:
    """One contiguous id range: `[start, start + size)` of kind text|special|units|codes."""

    kind: str
    name: str
    start: int
    size: int

    @property
    def stop(self) -> int:
        return self.start + self.size

    def __contains__(self, token_id: object) -> bool:
        return isinstance(token_id, int | np.integer) and self.start <= int(token_id) < self.stop


@dataclass(frozen=True, kw_only=True)
class VocabSpec:
    """An LLM vocabulary extended with speech tokens.

    Attributes:
        text_size: number of ids of the base text tokenizer (ids `[0, text_size)`).
        special_tokens: marker strings, ids right after the text range, in this order.
        units: unit vocabulary name -> number of units (e.g. `{"km100": 100}`).
        codes: codec name -> `(num_codebooks, codebook_size)`; codebook q gets its own range.
        pad_to_multiple_of: the model's embedding rows are rounded up to this (ids past
            `size` are never produced; they only make matmuls faster).
    """

    text_size: int
    special_tokens: tuple[str, ...] = DEFAULT_SPECIALS
    units: dict[str, int] = field(default_factory=dict)
    codes: dict[str, tuple[int, int]] = field(default_factory=dict)
    pad_to_multiple_of: int = 1

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        check_at_least(0, text_size=self.text_size)
        if len(set(self.special_tokens)) != len(self.special_tokens):
            raise ConfigError("special_tokens", self.special_tokens, "must not repeat a token")
        for name, size in self.units.items():
            if not 1 <= size <= 65536:
                raise ConfigError(f"units[{name!r}]", size, "must be in [1, 65536] (uint16 units)")
        for name, (q, k) in self.codes.items():
            if q < 1 or not 1 <= k <= 65536:
                raise ConfigError(
                    f"codes[{name!r}]", (q, k), "must be (num_codebooks >= 1, 1 <= size <= 65536)"
                )
        check_at_least(1, pad_to_multiple_of=self.pad_to_multiple_of)

    # ---------------------------------------------------------------- layout
    @property
    def ranges(self) -> tuple[TokenRange, ...]:
        """All ranges in id order: text, special, units.<name>..., codes.<name>.q<i>..."""
        out = [TokenRange(kind="text", name="text", start=0, size=self.text_size)]
        start = self.text_size
        out.append(TokenRange(kind="special", name="special", start=start, size=len(self.special_tokens)))
        start += len(self.special_tokens)
        for name, size in self.units.items():
            out.append(TokenRange(kind="units", name=f"units.{name}", start=start, size=size))
            start += size
        for name, (num_q, size) in self.codes.items():
            for q in range(num_q):
                out.append(TokenRange(kind="codes", name=f"codes.{name}.q{q}", start=start, size=size))
                start += size
        return tuple(out)

    @property
    def size(self) -> int:
        """Number of ids in use (text + specials + all speech tokens)."""
        last = self.ranges[-1]
        return last.stop

    @property
    def embedding_rows(self) -> int:
        """`size` rounded up to `pad_to_multiple_of`: the model's embedding matrix height."""
        m = self.pad_to_multiple_of
        return (self.size + m - 1) // m * m

    def range(self, name: str) -> TokenRange:
        """The range called `name` ("text", "special", "units.km100", "codes.encodec.q0")."""
        for r in self.ranges:
            if r.name == name:
                return r
        known = ", ".join(r.name for r in self.ranges)
        raise InputError(name, f"no such token range; known ranges: {known}")

    def special_id(self, token: str) -> int:
        """Id of a marker token, e.g. `special_id("<|asr|>")`."""
        try:
            return self.text_size + self.special_tokens.index(token)
        except ValueError:
            raise InputError(
                token, f"not a special token of this vocabulary; known: {list(self.special_tokens)}"
            ) from None

    # ---------------------------------------------------------------- mapping
    def unit_ids(self, name: str, units: np.ndarray) -> np.ndarray:
        """Units `(T,)` of vocabulary `name` (values in `[0, size)`) -> LLM ids `(T,)` int64."""
        r = self.range(f"units.{name}")
        u = np.asarray(units).astype(np.int64)
        _check_local(u, r)
        return u + r.start

    def code_ids(self, name: str, codes: np.ndarray) -> np.ndarray:
        """Codes `(T, Q)` of codec `name` -> LLM ids `(T, Q)` int64 (codebook q offset by its range)."""
        return self._map_codes(name, codes, to_ids=True)

    def to_units(self, name: str, ids: np.ndarray) -> np.ndarray:
        """Inverse of `unit_ids`: LLM ids `(T,)` -> units `(T,)` int64; any other id is an error."""
        r = self.range(f"units.{name}")
        i = np.asarray(ids).astype(np.int64)
        _check_global(i, r)
        return i - r.start

    def to_codes(self, name: str, ids: np.ndarray) -> np.ndarray:
        """Inverse of `code_ids`: `(T, Q)` LLM ids -> `(T, Q)` codes int64."""
        return self._map_codes(name, ids, to_ids=False)

    def _map_codes(self, name: str, values: np.ndarray, *, to_ids: bool) -> np.ndarray:
        """`(T, Q)` codes of codec `name` -> LLM ids (`to_ids`), or LLM ids -> codes, int64;
        each codebook q checked against its range ``codes.NAME.qQ``."""
        num_q, _ = self._codec(name)
        v = np.asarray(values).astype(np.int64)
        if v.ndim != 2 or v.shape[1] != num_q:
            raise InputError(f"codes.{name}", f"expected shape (T, {num_q}), got {v.shape}")
        out = np.empty_like(v)
        for q in range(num_q):
            r = self.range(f"codes.{name}.q{q}")
            (_check_local if to_ids else _check_global)(v[:, q], r)
            out[:, q] = v[:, q] + r.start if to_ids else v[:, q] - r.start
        return out

    def check_ids(self, ids: np.ndarray) -> None:
        """Raises `InputError` if any id is outside `[0, size)`."""
        _check_global(np.asarray(ids).astype(np.int64),
                      TokenRange(kind="all", name="vocabulary", start=0, size=self.size))

    def kind_of(self, ids: np.ndarray) -> np.ndarray:
        """Range index (into `ranges`) of every id; shape of `ids`, int64. Used for per-kind perplexity."""
        i = np.asarray(ids).astype(np.int64)
        self.check_ids(i)
        starts = np.array([r.start for r in self.ranges if r.size > 0], dtype=np.int64)
        index = np.array([k for k, r in enumerate(self.ranges) if r.size > 0], dtype=np.int64)
        return index[np.searchsorted(starts, i, side="right") - 1]

    def token_strings(self) -> list[str]:
        """Strings of all non-text tokens, in id order (what `add_to_tokenizer` adds)."""
        out = list(self.special_tokens)
        for name, size in self.units.items():
            out.extend(f"<|u:{name}:{k}|>" for k in range(size))
        for name, (num_q, size) in self.codes.items():
            for q in range(num_q):
                out.extend(f"<|c:{name}:q{q}:{k}|>" for k in range(size))
        return out

    def _codec(self, name: str) -> tuple[int, int]:
        if name not in self.codes:
            raise InputError(f"codes.{name}", f"no such codec in this vocabulary; known: {list(self.codes)}")
        return self.codes[name]

    # ---------------------------------------------------------------- Hugging Face
    def add_to_tokenizer(self, tokenizer: Any) -> None:
        """Adds the speech and marker tokens to a Hugging Face tokenizer, at this spec's ids.

        The tokenizer must have exactly `text_size` tokens before the call (else the ids would not
        match the spec); after it, `tokenizer.convert_tokens_to_ids(s)` gives the spec's id for
        every string of `token_strings()`.
        """
        if len(tokenizer) != self.text_size:
            raise InputError(
                "tokenizer",
                f"has {len(tokenizer)} tokens but the spec's text_size is {self.text_size}; "
                "build the spec with VocabSpec.for_tokenizer(tokenizer, ...)",
            )
        strings = self.token_strings()
        tokenizer.add_tokens(strings, special_tokens=True)
        got = tokenizer.convert_tokens_to_ids([strings[0], strings[-1]])
        if got != [self.text_size, self.size - 1]:
            raise InputError("tokenizer", f"added tokens got ids {got}, expected {[self.text_size, self.size - 1]}")

    def resize_model(self, model: Any) -> None:
        """Resizes a Hugging Face model's input (and tied/untied output) embeddings to `embedding_rows`."""
        model.resize_token_embeddings(self.embedding_rows, mean_resizing=False)

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, **kwargs: Any) -> VocabSpec:
        """A spec whose text range is the tokenizer's current vocabulary (`len(tokenizer)`)."""
        return cls(text_size=len(tokenizer), **kwargs)

    # ---------------------------------------------------------------- files
    def to_json(self) -> dict[str, Any]:
        return {
            "version": SPEC_VERSION,
            "text_size": self.text_size,
            "special_tokens": list(self.special_tokens),
            "units": dict(self.units),
            "codes": {k: list(v) for k, v in self.codes.items()},
            "pad_to_multiple_of": self.pad_to_multiple_of,
            "ranges": [{"kind": r.kind, "name": r.name, "start": r.start, "size": r.size} for r in self.ranges],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VocabSpec:
        if data.get("version") != SPEC_VERSION:
            raise InputError("vocab spec", f"version {data.get('version')!r} is not {SPEC_VERSION}")
        spec = cls(
            text_size=int(data["text_size"]),
            special_tokens=tuple(data["special_tokens"]),
            units={k: int(v) for k, v in data["units"].items()},
            codes={k: (int(v[0]), int(v[1])) for k, v in data["codes"].items()},
            pad_to_multiple_of=int(data.get("pad_to_multiple_of", 1)),
        )
        if "ranges" in data and data["ranges"] != spec.to_json()["ranges"]:
            raise InputError("vocab spec", "stored ranges disagree with the ones the fields imply")
        return spec

    def checksum(self) -> str:
        """``sha256:<hex>`` of the canonical JSON of the spec: one vocabulary file, one checksum."""

        blob = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()
        return "sha256:" + hashlib.sha256(blob).hexdigest()

    def save(self, path: Path) -> Path:
        """Writes JSON to `path` (a file, or a directory -> `path/vocab_spec.json`); returns the file."""
        path = Path(path)
        if path.is_dir():
            path = path / SPEC_FILE
        atomic.write_text(path, json.dumps(self.to_json(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> VocabSpec:
        path = Path(path)
        if path.is_dir():
            path = path / SPEC_FILE
        if not path.exists():
            raise InputError(str(path), "no vocab spec here; it is saved with the model as vocab_spec.json")
        result: VocabSpec = cls.from_json(json.loads(path.read_text()))
        return result


def _check_local(values: np.ndarray, r: TokenRange) -> None:
    bad = (values < 0) | (values >= r.size)
    if bad.any():
        v = int(values[bad].flat[0])
        raise InputError(r.name, f"token {v} is outside the range [0, {r.size}) of {r.name}")


def _check_global(ids: np.ndarray, r: TokenRange) -> None:
    bad = (ids < r.start) | (ids >= r.stop)
    if bad.any():
        v = int(ids[bad].flat[0])
        raise InputError(r.name, f"id {v} is outside the range [{r.start}, {r.stop}) of {r.name}")
