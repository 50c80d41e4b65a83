"""What the line-oriented files of the exports can hold, and the one error for what they cannot.

Ingest keeps any id a corpus gives (``"utt 1"``, a tab, even a line break inside a JSON string), and
the JSON exports (``slam``, ``nemo``, ``lhotse``, ``parquet``, ``hf``) write such ids as they are.
Line-oriented files cannot, and their readers would misparse them silently, so those exports
refuse the row with an `InputError` naming the value, the cut and the format:

- Kaldi-style ``<key> <value>`` files (``--to espnet``: ``wav.scp``, ``text``, ``utt2spk``; read by
  ESPnet's ``read_2columns_text``, kaldiio and Kaldi's scripts, which split on whitespace): a key
  (cut id, speaker) must be non-empty without whitespace (`kaldi_token`). A value may hold inner
  spaces but no line break and no whitespace at its ends (`kaldi_value`).
- fairseq ``.tsv`` (read as ``line.strip().split("\\t")`` after ``readline().strip()`` for the root):
  a field must hold no tab or line break and no whitespace at its ends (`tsv_field`).
- memmap ``{split}.ids.txt`` (one id per line): an id must hold no line break (`line_break`).

A "line break" is any character `str.splitlines` splits on (``\\n``, ``\\r``, ``\\v``, ``\\f``,
``\\x1c``-``\\x1e``, ``\\x85``, ``\\u2028``, ``\\u2029``): readers differ in which they honour.
"""

from __future__ import annotations

from speechtok.errors import InputError

#: How to get ids an export can write, appended to every refusal.
FIX = ("give the cuts ids, speakers and audio paths without such characters (the `id`/`speaker` of a "
       "JSONL or lhotse manifest, the file names of a directory) and ingest again, or export to a JSON "
       "format (--to slam, nemo, lhotse)")


def line_break(value: str) -> bool:
    """True when `value` would not stay one line (it holds a character `str.splitlines` splits on)."""
    return bool(value) and value.splitlines() != [value]


def kaldi_token(value: str) -> bool:
    """True when `value` can be the key (or speaker) of a Kaldi-style ``<key> <value>`` line."""
    return bool(value) and not any(c.isspace() for c in value)


def kaldi_value(value: str) -> bool:
    """True when `value` can be the rest of a Kaldi-style line (read back unchanged)."""
    return bool(value) and not line_break(value) and value == value.strip()


def tsv_field(value: str) -> bool:
    """True when `value` can be a field of a fairseq ``.tsv`` line (read back unchanged)."""
    return kaldi_value(value) and "\t" not in value


def unwritable(fmt: str, where: str, what: str, why: str) -> InputError:
    """The refusal of a row whose `what` (e.g. ``"cut id 'a b'"``, its value repr-quoted) cannot be
    written by ``--to fmt`` because `why`; `where` names the output directory."""
    return InputError(where, f"{what} {why}, so --to {fmt} cannot write it; {FIX}")


__all__ = ["FIX", "kaldi_token", "kaldi_value", "line_break", "tsv_field", "unwritable"]
