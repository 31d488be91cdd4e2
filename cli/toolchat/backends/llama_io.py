"""llama.cpp plumbing for the local backend: its log, its GPU support, its AMX kernels, a GGUF's
metadata."""

from __future__ import annotations

import ctypes
import os
import shlex
import sys
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


def physical_cores(topology: Path = Path("/sys/devices/system/cpu")) -> int | None:
    """The physical cores this process may run on, a core's hyperthreads counted once: close to the
    threads llama.cpp's own tools generate with. llama-cpp-python's default is half the logical
    CPUs, which on a VM of 2 cores without hyperthreads is 1, and 1.6x slower to generate there.
    None where Linux's topology cannot be read (llama-cpp-python then chooses)."""
    try:
        cpus = os.sched_getaffinity(0)
        cores = {(topology / f"cpu{cpu}/topology/thread_siblings_list").read_text().strip() for cpu in cpus}
    except (AttributeError, OSError):
        return None
    return len(cores) or None


def amx_kernels(llama_cpp: Any) -> bool:
    """Whether this build of llama.cpp has its AMX kernels: a native build on an Intel Xeon with AMX
    (Sapphire Rapids and later) has them."""
    return b"AMX_INT8 = 1" in llama_cpp.llama_print_system_info()


@contextmanager
def loading_without_amx(llama_cpp: Any) -> Iterator[bool]:
    """Models loaded inside keep their weights out of llama.cpp's extra buffer types when the build
    has AMX kernels; yields whether it did. Those kernels' matrix multiply dies with a general
    protection fault on the first decode (seen with llama-cpp-python 0.3.36 on an Intel Xeon with
    AMX, at `ldtilecfg`: the tile configuration it loads is invalid). Without the extra buffers no
    AMX kernel runs; the weights are then not repacked for the CPU either (slower, not wrong).
    llama-cpp-python has no keyword for it, so the binding's default parameters are wrapped while a
    model loads."""
    if not amx_kernels(llama_cpp):
        yield False
        return
    binding = llama_cpp.llama_cpp  # the module whose defaults Llama() reads
    defaults = binding.llama_model_default_params

    def without_extra_buffers() -> Any:
        params = defaults()
        params.use_extra_bufts = False
        return params

    binding.llama_model_default_params = without_extra_buffers
    try:
        yield True
    finally:
        binding.llama_model_default_params = defaults


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
