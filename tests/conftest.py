"""Shared fixtures. `shared_dir` is `../shared` from the project root; tests that need it skip."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]  # to find this clone's sources before importing them

# This clone's sources first, without relying on a .pth: for this process and for the
# subprocesses tests start (`sys.executable -m speechtok`), whichever interpreter runs pytest.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
_rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(ROOT)]
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *_rest])

from speechtok.paths import shared_dir  # noqa: E402  (after the sys.path set-up above)

SHARED = shared_dir()

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(ROOT / ".cache" / "torchinductor"))


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """torch on one thread for a module (2 OpenMP threads on a shared 2-core machine spin and
    crawl); use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_whisper_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight Whisper (d_model 32, 2 encoder layers) saved with `save_pretrained`."""
    import torch
    import transformers as tf

    cfg = tf.WhisperConfig(d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                           decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                           num_mel_bins=80, vocab_size=100, max_source_positions=1500,
                           max_target_positions=32, pad_token_id=0, bos_token_id=1,
                           eos_token_id=2, decoder_start_token_id=1)
    torch.manual_seed(0)
    dst = tmp_path_factory.mktemp("tiny-whisper") / "whisper"
    tf.WhisperModel(cfg).save_pretrained(dst)
    return dst


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"needs {path} (the project's ../shared folder); it is absent on this machine")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """`../shared`, or skip with a reason."""
    return _need(SHARED)


@pytest.fixture(scope="session")
def speechocean_dir() -> Path:
    return _need(SHARED / "data" / "speechocean762-train80")


@pytest.fixture(scope="session")
def fsdd_dir() -> Path:
    return _need(SHARED / "data" / "fsdd" / "audio")


@pytest.fixture(scope="session")
def lhotse_fixtures_dir() -> Path:
    return _need(SHARED / "data" / "lhotse-fixtures")


@pytest.fixture(scope="session")
def whisper_ct2_dir() -> Path:
    return _need(SHARED / "models" / "whisper-tiny.en-ct2")


@pytest.fixture(scope="session")
def lyra_dir() -> Path:
    return _need(SHARED / "models" / "lyra-v2")

