"""Mapping frames between token streams of different frame rates (units vs codec codes).

Frame `i` at rate `r` covers ``[i / r, (i + 1) / r)`` seconds. A frame maps to the frame of the
other stream that contains its centre, ``floor((i + 0.5) * r_to / r_from)``, clipped to the
other stream's length. The arithmetic is exact (rates become fractions, e.g. DAC-44k's
44100 / 512 = 86.1328125 Hz), so the map never drifts on long cuts.

Examples: HuBERT units at 50 Hz vs EnCodec-24k codes at 75 Hz; Lyra 50 Hz vs DAC-44k 86.13 Hz.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from speechtok.errors import ConfigError, check_at_least


def _rate(name: str, r: float) -> Fraction:
    if not r > 0:
        raise ConfigError(name, r, "must be > 0 frames per second")
    return Fraction(r)


def frame_map(num_from: int, from_rate: float, to_rate: float, num_to: int | None = None) -> np.ndarray:
    """For each frame of the `from` stream, the index of the `to` frame containing its centre.

    Args:
        num_from: frames in the source stream.
        from_rate, to_rate: frames per second of the two streams.
        num_to: frames in the target stream (indices are clipped to ``num_to - 1``); None: no
            clipping.

    Returns:
        int64 (num_from,), non-decreasing.
    """
    check_at_least(0, num_from=num_from)
    a, b = _rate("from_rate", from_rate), _rate("to_rate", to_rate)
    ratio = b / a  # to-frames per from-frame
    num, den = ratio.numerator, ratio.denominator
    i = np.arange(num_from, dtype=np.int64)
    idx = ((2 * i + 1) * num) // (2 * den)  # floor((i + 0.5) * ratio), exact
    if num_to is not None:
        check_at_least(1, num_to=num_to)
        idx = np.minimum(idx, num_to - 1)
    return idx


def resample_tokens(tokens: np.ndarray, from_rate: float, to_rate: float, num_to: int) -> np.ndarray:
    """Re-times a token stream onto another frame grid (nearest-centre lookup).

    Args:
        tokens: (T_from, ...) array, e.g. units (T,) at 50 Hz.
        from_rate, to_rate: frames per second.
        num_to: frames wanted, e.g. the cut's codec frames ``len(codes)``.

    Returns:
        (num_to, ...) array: row `j` is the source token whose frame contains target frame j's
        centre (so 50 Hz units become 75 Hz rows aligned with EnCodec codes).
    """
    if len(tokens) == 0:
        raise ConfigError("tokens", 0, "must hold at least one frame")
    src = frame_map(num_to, to_rate, from_rate, num_to=len(tokens))
    return np.asarray(tokens)[src]


def frames_to_seconds(index: np.ndarray | int, rate: float) -> np.ndarray:
    """Start time in seconds of frame(s) `index` at `rate` frames per second."""
    return np.asarray(index, dtype=np.float64) / float(_rate("rate", rate))
