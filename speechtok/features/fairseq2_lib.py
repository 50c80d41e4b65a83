"""Importing fairseq2, whose native library (fairseq2n) needs Intel oneTBB.

`import_fairseq2` loads the copy of oneTBB that the ``tbb`` wheel installs next to the virtual
environment's site-packages when the dynamic linker does not find it on its own (an overlay
venv), then imports ``fairseq2``. Every speechtok module that uses fairseq2 imports it through here.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

from speechtok.errors import InputError


def import_fairseq2(module: str = "fairseq2") -> ModuleType:
    """Imports `module` (``fairseq2`` or one of its submodules), preloading oneTBB if needed.

    Raises:
        InputError: fairseq2 is not installed or its native library cannot be loaded (names the
            error and the fix).
    """
    try:
        return importlib.import_module(module)
    except OSError:
        pass
    except ImportError as exc:
        raise InputError("fairseq2", f"is not installed ({exc}); install the project's lock") from exc
    for entry in sys.path:
        lib = Path(entry).parent.parent / "libtbb.so.12"
        if entry.endswith("site-packages") and lib.is_file():
            ctypes.CDLL(str(lib), mode=getattr(os, "RTLD_GLOBAL", ctypes.RTLD_GLOBAL))
            break
    try:
        return importlib.import_module(module)
    except (OSError, ImportError) as exc:
        raise InputError("fairseq2", f"cannot be loaded ({exc}); its native library needs libtbb.so.12 "
                         "(the `tbb` wheel) on the library path") from exc
