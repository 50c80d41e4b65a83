"""``--to espnet``: a data directory for ESPnet-SpeechLM's ``speechlm1`` recipe, tokens included.

What ESPnet reads (checked against its code, not its docs alone):

- ``data.json`` (``make_speechlm_json.py``): ``{"task", "vocabularies": [token list files],
  "data_files": ["<path>,<modality>,<type>", ...], "num_examples", "examples": [ids]}``.
  ``ESPnetMultiTaskDataset`` (``espnet2/train/dataset.py``) splits each triplet on ``,`` and keys
  the loaded file by its *base name*; ``SpeechLMPreprocessor`` (``espnet2/train/preprocessor.py``)
  then looks every entry of the task template up by that name. So the files must be named as
  the template's entries (``wav.scp``, ``text``, ``utt2spk``) and listed in template order
  (conditions, then targets), and no path may hold a comma.
- Task templates (``SPEECHLM_TASKS`` in ``espnet2/speechlm/definitions.py``): the speech side of
  every discrete task is ``(wav.scp, codec|ssl, kaldi_ark)``: *tokens* in a Kaldi ark, not audio
  (ESPnet tokenizes ``wav.scp`` offline and replaces it). Supported here, see `TASKS`:
  ``asr`` (codec tokens -> text), ``ssl_asr`` (SSL units -> text), ``tts`` (text as ``g2p`` +
  ``utt2spk`` -> codec), ``bpe_tts`` (same with ``text_bpe``), ``audiolm`` (codec),
  ``textlm`` (text). Any other name is refused (`ConfigError`) with this list.
- Token values: ``codec`` tokens are what ESPnet's ``CodecTokenizer.forward`` writes, frame-major
  with codebook ``q`` shifted by ``q * codebook_size`` (``t0q0, t0q1+K, ..``, values in
  ``[0, Q*K)``); ``ssl`` tokens are the unit ids. Both as Kaldi binary int32 vectors
  (``<id> \\0B \\4 <n:int32> (\\4 <v:int32>)*n``, kaldiio's ``write_array`` layout), which
  kaldiio's ``load_scp`` behind the ``kaldi_ark`` type returns as ``int32 (n,)``.
- ``text``/``utt2spk``: ``<id> <content>``, read by ``read_2columns_text``; the transcript is
  BPE- or G2P-tokenized by ESPnet on the fly. A cut without a speaker maps to itself.
- Vocabularies (``make_token_list_speechlm.py``): one token per line, assigned to the modality
  whose name the file stem starts with: ``token_lists/codec_token_list`` (``Q*K`` lines) or
  ``token_lists/ssl_token_list`` (``K`` lines). The ``text_bpe``/``g2p`` vocabulary comes from
  ESPnet's own BPE model / G2P and is *not* written here: add it to ``vocabularies``.

``DEST`` layout: ``data.json``, ``wav.scp`` + ``wav.ark`` (the speech tokens), ``text``,
``utt2spk``, ``token_lists/``, and ``raw/`` (``wav.scp`` with audio paths, ``text``, ``utt2spk``:
the Kaldi data directory ESPnet's stage 1 takes, for users who tokenize with ESPnet instead);
segments, non-file audio and files whose path a Kaldi line cannot hold (a line break, whitespace
at its ends) are written once to ``DEST/audio/<id>.flac``. All files share one
id order. ``data.json`` also carries ``"speechtok"``: the token group, its provenance and layout.

ESPnet loader limits the export refuses (`InputError`, see `speechtok.exports.lines`): ids and
speakers that are empty or hold whitespace, and ids whose first character is in ``task + "_"``:
``ESPnetMultiTaskDataset.__getitem__`` removes the task prefix with ``str.lstrip(task + "_")``, a
character-set strip that eats such a character too.

Not covered: ESPnet's newer SpeechLM (``espnet2/speechlm/dataloader``, PyPI espnet 202511) reads
another ``data.json`` (``data_entry`` name/path/reader triplets with ``audio1``/``text1`` names,
``samples``) and tokenizes audio itself; this export does not write it.

Streamed row by row (memory flat in corpus size).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import numpy as np

from speechtok.errors import ConfigError, InputError
from speechtok.exports.audio import audio_file
from speechtok.exports.lines import kaldi_token, kaldi_value, line_break, unwritable
from speechtok.shards.reader import ShardDataset

Entry = tuple[str, str, str]  # (file name, modality, loader type)
_SPEECH = {"codec": "codes", "ssl": "units"}  # ESPnet modality -> speechtok group kind

# Task templates we can fill, copied from SPEECHLM_TASKS (conditions + targets, in order) of
# espnet/espnet espnet2/speechlm/definitions.py @ 06aa4b4823cf4e8d23984daaa32b092399e4412c.
# Its other tasks need data speechtok does not make (mt: src_text; text2audio: text_emb arks;
# codec_ssl_*: the joint codec_ssl stream).
TASKS: dict[str, tuple[Entry, ...]] = {
    "asr": (("wav.scp", "codec", "kaldi_ark"), ("text", "text_bpe", "text")),
    "ssl_asr": (("wav.scp", "ssl", "kaldi_ark"), ("text", "text_bpe", "text")),
    "tts": (("text", "g2p", "text"), ("utt2spk", "spk", "text"), ("wav.scp", "codec", "kaldi_ark")),
    "bpe_tts": (("text", "text_bpe", "text"), ("utt2spk", "spk", "text"), ("wav.scp", "codec", "kaldi_ark")),
    "audiolm": (("wav.scp", "codec", "kaldi_ark"),),
    "textlm": (("text", "text_bpe", "text"),),
}


def speech_group(task: str, groups: Sequence[str]) -> str | None:
    """The token group that fills `task`'s ``wav.scp`` entry (None for a text-only task).

    Raises:
        ConfigError: unknown task (the message lists `TASKS`), or not exactly one group of the
            kind the task needs among `groups` (then ``--group`` picks one).
    """
    if task not in TASKS:
        raise ConfigError("task", task, f"must be one of {sorted(TASKS)} (ESPnet-SpeechLM task templates "
                          "speechtok can fill)")
    modality = {m for name, m, _ in TASKS[task] if name == "wav.scp"}
    if not modality:
        return None
    kind = _SPEECH[modality.pop()]
    found = [g for g in groups if g.split(".", 1)[0] == kind]
    if len(found) != 1:
        raise ConfigError("group", list(groups), f"must hold exactly one {kind} group for ESPnet task {task!r} "
                          f"(found {found}); choose it with --group")
    return found[0]


def kaldi_int32_vector(tokens: np.ndarray) -> bytes:
    """`tokens` (n,) integers as a Kaldi binary int32 vector, from ``\\0B`` on (kaldiio's layout)."""
    rec = np.empty(tokens.size + 1, dtype=np.dtype([("size", "u1"), ("value", "<i4")]))  # packed, 5 bytes
    rec["size"] = 4
    rec["value"][0] = tokens.size
    rec["value"][1:] = tokens
    return b"\0B" + rec.tobytes()


def espnet_tokens(tokens: np.ndarray, kind: str, vocab_size: int, where: str) -> np.ndarray:
    """A row's tokens as ESPnet stores them: int32 (n,); codes (T, Q) frame-major, codebook q
    shifted by ``q * vocab_size`` (ESPnet's ``CodecTokenizer.forward``); units as they are.

    Raises:
        InputError: a token outside ``[0, vocab_size)`` (`where` names the row).
    """
    arr = np.asarray(tokens, dtype=np.int64)
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= vocab_size):
        raise InputError(where, f"has tokens in [{int(arr.min())}, {int(arr.max())}], outside the group's "
                         f"vocabulary [0, {vocab_size})")
    if kind == "codes":
        arr = arr.reshape(arr.shape[0], -1)  # (T, Q)
        arr = arr + np.arange(arr.shape[1]) * vocab_size
    return np.ascontiguousarray(arr.reshape(-1), dtype=np.int32)


def _token_list(dest: Path, kind: str, vocab_size: int, num_codebooks: int) -> Path:
    """Writes the modality's vocabulary (one distinct token per line) to ``dest/token_lists``."""
    d = dest / "token_lists"
    d.mkdir(parents=True, exist_ok=True)
    if kind == "codes":
        path, toks = d / "codec_token_list", (f"<codec_layer{q}_code{i}>" for q in range(num_codebooks)
                                              for i in range(vocab_size))
    else:
        path, toks = d / "ssl_token_list", (f"<ssl_code{i}>" for i in range(vocab_size))
    path.write_text("".join(t + "\n" for t in toks), encoding="utf-8")
    return path


def check_id(key: str, task: str, where: str) -> None:
    """Refuses (`InputError`) an id ESPnet-SpeechLM cannot look up for `task` (module docstring)."""
    if not kaldi_token(key):
        raise unwritable("espnet", where, f"cut id {key!r}", "is empty or has whitespace, and the Kaldi-style "
                         "`<id> <value>` files (wav.scp, text, utt2spk) are split on whitespace")
    if key[0] in set(task + "_"):
        raise InputError(where, f"cut id {key!r} starts with {key[0]!r}, a character of {task + '_'!r}: ESPnet's "
                         "ESPnetMultiTaskDataset strips the task prefix with str.lstrip and would lose it; "
                         "give the cuts ids that start otherwise (e.g. a corpus prefix)")


def speaker_line(key: str, speaker: object, where: str) -> str:
    """The ``utt2spk`` line of cut `key`: ``<id> <speaker>`` (the id itself without a speaker).

    Raises:
        InputError: a speaker with whitespace (Kaldi's ``utt2spk_to_spk2utt.pl`` and
            ``validate_data_dir.sh``, run on ``raw/``, split the line on it).
    """
    spk = str(speaker) if speaker else key
    if not kaldi_token(spk):
        raise unwritable("espnet", where, f"speaker {spk!r} of cut {key!r}", "has whitespace, and utt2spk "
                         "lines are `<id> <speaker>` split on whitespace")
    return f"{key} {spk}\n"


def export_espnet(out_dir: Path, dest: Path, groups: Sequence[str], *, task: str = "asr",
                  final: Path | None = None) -> int:
    """Writes the files of the module docstring into `dest` for ESPnet task `task`; returns rows.

    `groups`: the chosen field groups; exactly one of them must be of the kind the task's speech
    entry needs (codes for codec tasks, units for ``ssl_asr``). `final`: the directory `dest` is
    renamed to (paths in ``wav.scp``/``data.json`` point there).
    """
    group = speech_group(task, groups)
    final_dir = Path(final or dest).absolute()
    if "," in str(final_dir):
        raise ConfigError("output", str(final_dir), "must not contain ',' (ESPnet splits data.json triplets on it)")
    if line_break(str(final_dir)):
        raise ConfigError("output", str(final_dir), "must not contain a line break (wav.scp lines hold its path)")
    ds = ShardDataset(out_dir, ("cuts", *([group] if group else [])),
                      ["cut", "text", "speaker", "start", "duration", *([group] if group else [])])
    kind = group.split(".", 1)[0] if group else ""
    meta = ds.meta(group) if group else None
    vocab_size = int(meta.vocab_size or 0) if meta is not None else 0
    if meta is not None and vocab_size <= 0:
        raise InputError(f"{out_dir}:{group}", "has no vocab_size; ESPnet's token ids and vocabulary need it")
    names = {name for name, _, _ in TASKS[task]}
    ids: list[str] = []
    (dest / "raw").mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        fh: dict[str, IO[Any]] = {n: stack.enter_context(open(dest / n, "w", encoding="utf-8")) for n in (
            "text", "utt2spk", "raw/wav.scp", "raw/text", "raw/utt2spk", *(["wav.scp"] if group else []))}
        ark = stack.enter_context(open(dest / "wav.ark", "wb")) if group else None
        for row in ds:
            key = str(row["id"])
            check_id(key, task, str(out_dir))
            text = row.get("text")
            if "text" in names and not str(text or "").split():
                raise InputError(f"{out_dir}:{key}", f"has no transcript (or an empty one); ESPnet task {task!r} "
                                 "needs one (its `<id> <content>` readers fail on a line with no content)")
            text_line = f"{key} {' '.join(str(text).split())}\n" if str(text or "").split() else ""
            spk_line = speaker_line(key, row.get("speaker"), str(out_dir))
            audio = audio_file(row, dest / "audio", final_dir / "audio", str(out_dir), usable=kaldi_value)
            fh["raw/wav.scp"].write(f"{key} {audio}\n")
            for n, line in (("text", text_line), ("utt2spk", spk_line)):
                fh[n].write(line)
                fh["raw/" + n].write(line)
            if ark is not None and group is not None:
                ark.write(key.encode("utf-8") + b" ")
                offset = ark.tell()  # kaldiio's scp offset: just past "<id> "
                ark.write(kaldi_int32_vector(espnet_tokens(row[group], kind, vocab_size, f"{out_dir}:{key}")))
                fh["wav.scp"].write(f"{key} {final_dir / 'wav.ark'}:{offset}\n")
            ids.append(key)
    vocabularies = []
    if meta is not None:
        tl = _token_list(dest, kind, vocab_size, int(meta.num_codebooks or 1))
        vocabularies.append(str(final_dir / "token_lists" / tl.name))
    desc: dict[str, Any] = {
        "task": task, "vocabularies": vocabularies,
        "data_files": [f"{final_dir / name},{modality},{typ}" for name, modality, typ in TASKS[task]],
        "num_examples": len(ids), "examples": ids}
    if meta is not None and group is not None:
        m = json.loads(meta.to_json())
        desc["speechtok"] = {"group": group, "vocab_size": m["vocab_size"], "num_codebooks": m["num_codebooks"],
                             "frame_rate": m["frame_rate"],
                             "layout": "frame-major, codebook q shifted by q*vocab_size" if kind == "codes"
                             else "unit ids", "provenance": m}
    (dest / "data.json").write_text(json.dumps(desc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(ids)
