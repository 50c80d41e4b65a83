"""Failure classes: the one place that decides what an exception means for a run.

Every stage, the shard job and ingest ask this module, so that the same error is treated the
same way everywhere:

- **bad input** (`BAD_INPUT`): deterministic, the item itself is wrong (its bytes cannot be
  decoded, header and data disagree, NaN/Inf, silence, wrong channels...). The item is
  quarantined with a reason and the run goes on. Code raises `BadInputError` (an
  `InputError`) or returns a quarantine record.
- **environment** (`ENVIRONMENT`): the machine, not the item (an `OSError` other than a
  decoder's format error, a file that existed at ingest and is now missing, `MemoryError`,
  timeouts, CUDA out of memory). Retried with backoff (`with_retries`, `RetryPolicy`); when the
  retries are spent an `EnvironmentFailure` naming the item is raised: the shard fails,
  nothing of it is committed, the run exits non-zero, and a rerun picks the shard up.
- **bug** (`BUG`): any other exception from stage code. The shard fails with the traceback,
  nothing is committed, the run exits non-zero.

`classify(exc)` gives the class of an exception; `describe(exc)` a one-line detail.
"""

from __future__ import annotations

import errno
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from speechtok.errors import BugError, ConfigError, InputError, SpeechtokError

BAD_INPUT = "bad_input"
ENVIRONMENT = "environment"
BUG = "bug"

T = TypeVar("T")

#: errno values of a full disk (or a file-size limit): environment errors not worth retrying
#: within seconds; the run stops with a "free space and rerun" message.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})


class BadInputError(InputError):
    """An item is unusable for a deterministic reason (`reason` says why)."""

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across process pools
        return (type(self), (self.item, self.reason))


class TransientError(SpeechtokError):
    """An environment problem seen by speechtok itself (e.g. a file that was there at ingest
    is gone, or cannot be read); retried like an `OSError`."""

    def __init__(self, item: str, detail: str) -> None:
        self.item = item
        self.detail = detail
        super().__init__(f"{item}: {detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.item, self.detail))


class EnvironmentFailure(SpeechtokError):
    """An environment error that persisted through every retry; `item` names what failed."""

    def __init__(self, item: str, detail: str, attempts: int) -> None:
        self.item = item
        self.detail = detail
        self.attempts = attempts
        super().__init__(f"{item}: {detail} (failed {attempts} time(s); fix the cause, e.g. "
                         f"remount or restore the file, and rerun the same command)")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.item, self.detail, self.attempts))


def _is_cuda_oom(exc: BaseException) -> bool:
    name = type(exc).__name__
    return name == "OutOfMemoryError" or (isinstance(exc, RuntimeError)
                                          and "out of memory" in str(exc).lower()
                                          and "cuda" in str(exc).lower())


def classify(exc: BaseException) -> str:
    """`BAD_INPUT`, `ENVIRONMENT` or `BUG` for `exc` (see module docstring).

    `EnvironmentFailure`/`TransientError`, `OSError` (timeouts and missing files included),
    `MemoryError` and CUDA out-of-memory errors are environment; `BadInputError` and
    `InputError` are bad input; anything else is a bug. Decoder format errors never reach here
    as `OSError`: the audio loader turns them into `BadInputError` first.
    """
    if isinstance(exc, (EnvironmentFailure, TransientError, MemoryError, TimeoutError)):
        return ENVIRONMENT
    if isinstance(exc, OSError) or _is_cuda_oom(exc):
        return ENVIRONMENT
    if isinstance(exc, InputError):
        return BAD_INPUT
    return BUG


def describe(exc: BaseException, limit: int = 500) -> str:
    """``"TypeName: message"``, at most `limit` characters."""
    return f"{type(exc).__name__}: {exc}"[:limit]


def traceback_text(exc: BaseException) -> str:
    """The formatted traceback of `exc` (with its chained causes)."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How environment errors are retried.

    Attributes:
        attempts: tries in all (>= 1; 1 = no retry).
        backoff_s: sleep before the 2nd try; doubles before each later one (0 = no sleep).
    """

    attempts: int = 3
    backoff_s: float = 1.0

    def validate(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int) \
                or self.attempts < 1:
            raise ConfigError("retries", self.attempts, "must be an integer >= 1")
        if not isinstance(self.backoff_s, (int, float)) or self.backoff_s < 0:
            raise ConfigError("retry_backoff_s", self.backoff_s, "must be a number >= 0")

    def delays(self) -> Iterable[float]:
        """Seconds to sleep before retry 1, 2, ... (attempts - 1 values)."""
        return (self.backoff_s * 2 ** i for i in range(self.attempts - 1))


_POLICY: list[RetryPolicy] = [RetryPolicy()]


def set_policy(policy: RetryPolicy) -> None:
    """Sets this process's retry policy (the shard job does it from the job dict)."""
    policy.validate()
    _POLICY[0] = policy


def policy() -> RetryPolicy:
    """This process's retry policy."""
    return _POLICY[0]


def with_retries(fn: Callable[[], T], *, item: str, retry: RetryPolicy | None = None) -> T:
    """``fn()``, retried while it raises an environment error (see `classify`).

    Bad input and bugs propagate at once; an `EnvironmentFailure` from a nested call is not
    retried again.

    Raises:
        EnvironmentFailure: naming `item`, when every attempt failed with an environment error.
    """
    pol = retry or policy()
    delays = list(pol.delays())
    for attempt in range(pol.attempts):
        try:
            return fn()
        except EnvironmentFailure:
            raise
        except BaseException as exc:
            if not isinstance(exc, Exception) and not isinstance(exc, MemoryError):
                raise
            if classify(exc) != ENVIRONMENT:
                raise
            if attempt == pol.attempts - 1 or os_errno(exc) in DISK_FULL_ERRNOS:
                raise EnvironmentFailure(item, describe(exc), pol.attempts) from exc
            if delays[attempt] > 0:
                time.sleep(delays[attempt])
    raise BugError("with_retries: the retry loop ended without a result")  # pragma: no cover


def probe_readable(path: str) -> None:
    """Reads every byte of `path`; raises `TransientError` when the file is gone or reading it
    fails at the OS level (a decoder error on readable bytes is then the bytes' fault)."""
    try:
        with open(path, "rb") as fh:
            while fh.read(1 << 20):
                pass
    except FileNotFoundError as exc:
        raise TransientError(path, "the file existed at ingest and is now missing "
                             f"({describe(exc)}); restore it or remount its volume") from exc
    except IsADirectoryError as exc:
        raise BadInputError(path, "is a directory, not an audio file") from exc
    except OSError as exc:
        raise TransientError(path, f"cannot be read ({describe(exc)})") from exc


def os_errno(exc: BaseException) -> int | None:
    """The errno of the first `OSError` in `exc`'s chain of causes, or None."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return None
        if isinstance(seen, OSError) and seen.errno is not None:
            return int(seen.errno)
        seen = seen.__cause__ or seen.__context__
    return None


def failure_record(exc: BaseException, *, stage: str, shard: int) -> dict[str, Any]:
    """The JSON-able record a shard job returns instead of rows when it fails.

    ``{"class", "stage", "shard", "item", "error", "errno", "traceback"}``: `item` is the cut
    or file that failed when known (an `EnvironmentFailure`), else None; `errno` that of the
    `OSError` behind it, if any.
    """
    item = getattr(exc, "item", None)
    cls = classify(exc)
    if cls == BAD_INPUT:  # bad input that escaped a stage's own quarantine is a stage bug
        cls = BUG
    return {"class": cls, "stage": stage, "shard": shard,
            "item": None if item is None else str(item), "error": describe(exc, 2000),
            "errno": os_errno(exc), "traceback": traceback_text(exc)}
