"""llama.cpp plumbing for the local backend: its log, its GPU support, a GGUF's metadata."""

from __future__ import annotations

import ctypes
import shlex
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

LLAMA_LOG: deque[str] = deque(maxlen=2000)  # llama.cpp's own log; shown with TOOLCHAT_DEBUG=1


def gpu_offload_supported() -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


DEVICES = Path("/")  # where the NVIDIA driver shows itself: /proc/driver/nvidia/gpus/*, /dev/nvidia0


def nvidia_gpu_present() -> bool:
    """An NVIDIA GPU with its driver loaded: only then can a CUDA build of llama.cpp use one."""
    gpus = DEVICES / "proc/driver/nvidia/gpus"
    try:
        return (DEVICES / "dev/nvidia0").exists() or (gpus.is_dir() and any(gpus.iterdir()))
    except OSError:
        return False


def cuda_hint() -> str:
    """The command that installs a CUDA build into the environment toolchat runs in (its own pip,
    not whichever `pip` comes first on PATH)."""
    pip = f"{shlex.quote(sys.executable)} -m pip"
    return f'CMAKE_ARGS="-DGGML_CUDA=on" {pip} install --force-reinstall --no-cache-dir llama-cpp-python'


def read_metadata(llama_cpp: Any, llm: Any) -> dict[str, str]:
    """The GGUF's metadata, each string decoded with replacement: llama-cpp-python's own reading
    drops all of it (the chat template too) when any one value is not UTF-8."""
    model = llm._model.model
    metadata = {}
    for i in range(llama_cpp.llama_model_meta_count(model)):
        key = _meta_string(llama_cpp.llama_model_meta_key_by_index, model, i)
        metadata[key] = _meta_string(llama_cpp.llama_model_meta_val_str_by_index, model, i)
    return metadata


def _meta_string(read: Callable[[Any, int, Any, int], int], model: Any, index: int) -> str:
    size = 1024
    while True:
        buffer = ctypes.create_string_buffer(size)
        needed = read(model, index, buffer, size)
        if needed < size:
            return buffer.value.decode("utf-8", "replace")
        size = needed + 1


def capture_log(llama_cpp: Any, debug: bool) -> None:
    """Route llama.cpp's log into LLAMA_LOG; echo it to stderr only when debugging."""
    global _LOG_CALLBACK
    if _LOG_CALLBACK is not None:
        return

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        line = text.decode("utf-8", "replace")
        LLAMA_LOG.append(line)
        if debug:
            import sys

            sys.stderr.write(line)

    _LOG_CALLBACK = callback  # keep a reference: llama.cpp holds only the pointer
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


_LOG_CALLBACK: Any = None
