"""Deterministic, varied short English sentences for the demo corpus (templates x word lists).

Lower-case words without punctuation, so that the text is exactly what espeak-ng says and what
an ASR reference should be.
"""

from __future__ import annotations

import random
import re

_ADJ = (
    "red", "small", "quiet", "happy", "old", "bright", "cold", "green", "heavy", "gentle",
    "tall", "busy", "young", "dark", "warm", "lucky", "clever", "brave", "sleepy", "wooden",
)
_NOUN = (
    "dog", "cat", "teacher", "farmer", "river", "garden", "window", "letter", "train", "doctor",
    "apple", "city", "child", "bird", "table", "mountain", "boat", "singer", "market", "clock",
)
_VERB_PAST = (
    "found", "painted", "carried", "watched", "opened", "cleaned", "followed", "visited",
    "moved", "helped", "counted", "lifted", "fixed", "crossed", "called", "answered",
)
_PLACE = (
    "in the kitchen", "near the station", "by the lake", "at the school", "under the bridge",
    "on the hill", "behind the house", "in the park", "at the harbour", "on the farm",
)
_TIME = (
    "on monday", "this morning", "last night", "in the spring", "after lunch", "every evening",
    "before dawn", "on the weekend", "in december", "at noon",
)
_NUMBERS = (
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve",
    "twenty", "fifty", "a hundred",
)
_NAMES = ("anna", "peter", "maria", "james", "sofia", "david", "laura", "tom", "emma", "lucas")

_TEMPLATES = (
    "the {adj} {noun} {verb} the {noun2} {place}",
    "{name} {verb} {num} {nouns2} {time}",
    "we saw a {adj} {noun} {place} {time}",
    "please bring the {adj} {noun2} to {name}",
    "is the {noun} {place} or {place2}",
    "{name} and {name2} {verb} the {adj} {noun}",
    "there are {num} {adj} {nouns} {place}",
    "the {noun} was {adj} {time}",
    "do you know where the {adj} {noun2} is",
    "{time} the {noun} {verb} a {adj} {noun2}",
    "my {noun} is {adj} and very {adj2}",
    "{name} counted {num} {nouns2} {place}",
)


_IRREGULAR = {"city": "cities", "child": "children"}
_ARTICLE = re.compile(r"\ba (?=[aeiou])")


def plural(noun: str) -> str:
    """English plural of the word-list nouns."""
    return _IRREGULAR.get(noun, noun + "s")


def make_sentences(n: int, seed: int = 0) -> list[str]:
    """`n` distinct sentences (deterministic for a given `n` and `seed`; prefixes agree)."""
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    attempts = 0
    while len(out) < n:
        attempts += 1
        tpl = _TEMPLATES[len(out) % len(_TEMPLATES)] if attempts < 50 * (n + 1) else rng.choice(_TEMPLATES)
        noun, noun2 = rng.choice(_NOUN), rng.choice(_NOUN)
        s = tpl.format(
            adj=rng.choice(_ADJ),
            adj2=rng.choice(_ADJ),
            noun=noun,
            noun2=noun2,
            nouns=plural(noun),
            nouns2=plural(noun2),
            verb=rng.choice(_VERB_PAST),
            place=rng.choice(_PLACE),
            place2=rng.choice(_PLACE),
            time=rng.choice(_TIME),
            num=rng.choice(_NUMBERS),
            name=rng.choice(_NAMES),
            name2=rng.choice(_NAMES),
        )
        s = _ARTICLE.sub("an ", s)
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out
