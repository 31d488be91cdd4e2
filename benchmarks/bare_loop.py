"""The seeds' bare tool loop with the openai SDK: the floor toolchat's `ask` is compared with.
Usage: python bare_loop.py BASE_URL PROMPT"""

import json
import sys

from openai import OpenAI


def get_weather(city: str) -> str:
    return f"It's sunny in {city}, with a temperature of 20C"


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get weather information",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]

client = OpenAI(base_url=sys.argv[1], api_key="not-needed")
messages = [{"role": "user", "content": sys.argv[2]}]
while True:
    stream = client.chat.completions.create(model="fake", messages=messages, tools=TOOLS, stream=True)
    text, calls = "", {}
    for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                text += choice.delta.content
                sys.stdout.write(choice.delta.content)
            for delta in choice.delta.tool_calls or []:
                slot = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                slot["id"] = delta.id or slot["id"]
                slot["name"] = (delta.function.name or slot["name"]) if delta.function else slot["name"]
                slot["arguments"] += (delta.function.arguments or "") if delta.function else ""
    if not calls:
        break
    messages.append(
        {
            "role": "assistant",
            "content": text,
            "tool_calls": [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in calls.values()
            ],
        }
    )
    for c in calls.values():
        messages.append({"role": "tool", "tool_call_id": c["id"], "content": get_weather(**json.loads(c["arguments"]))})
print()
