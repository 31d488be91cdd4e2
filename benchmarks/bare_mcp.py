"""The floor for `toolchat ask` with MCP servers: the official SDK connects to the stdio servers
concurrently (one task holds each session, as the SDK requires) and lists their tools; a bare
openai-SDK streaming loop runs the model's calls on their servers.
Usage: python bare_mcp.py BASE_URL PROMPT 'server command' ['server command' ...]"""

import asyncio
import json
import shlex
import sys

from mcp import Client, StdioServerParameters
from openai import AsyncOpenAI


async def hold(command: str, connected: "asyncio.Queue[Client]", done: asyncio.Event) -> None:
    words = shlex.split(command)
    async with Client(StdioServerParameters(command=words[0], args=words[1:])) as client:
        await connected.put(client)
        await done.wait()


async def loop(base_url: str, prompt: str, clients: list) -> None:
    listed = await asyncio.gather(*(client.list_tools() for client in clients))
    owner, tools = {}, []
    for client, result in zip(clients, listed):
        for tool in result.tools:
            owner[tool.name] = client
            tools.append(
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description or "",
                        "parameters": tool.input_schema,
                    },
                }
            )
    model = AsyncOpenAI(base_url=base_url, api_key="not-needed")
    messages = [{"role": "user", "content": prompt}]
    while True:
        stream = await model.chat.completions.create(model="fake", messages=messages, tools=tools, stream=True)
        text, calls = "", {}
        async for chunk in stream:
            for choice in chunk.choices:
                text += choice.delta.content or ""
                for delta in choice.delta.tool_calls or []:
                    slot = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                    slot["id"] = delta.id or slot["id"]
                    slot["name"] = (delta.function.name or slot["name"]) if delta.function else slot["name"]
                    slot["arguments"] += (delta.function.arguments or "") if delta.function else ""
        if not calls:
            print(text)
            return
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
            result = await owner[c["name"]].call_tool(c["name"], json.loads(c["arguments"]))
            content = "\n".join(block.text for block in result.content if block.type == "text")
            messages.append({"role": "tool", "tool_call_id": c["id"], "content": content})


async def main() -> None:
    base_url, prompt, commands = sys.argv[1], sys.argv[2], sys.argv[3:]
    connected: asyncio.Queue = asyncio.Queue()
    done = asyncio.Event()
    holders = [asyncio.create_task(hold(command, connected, done)) for command in commands]
    clients = [await connected.get() for _ in commands]
    try:
        await loop(base_url, prompt, clients)
    finally:
        done.set()
        await asyncio.gather(*holders)


asyncio.run(main())
