"""A hostile MCP server without the SDK: newline-delimited JSON-RPC on stdio, written by hand so
it can say what the SDK would not. `python raw.py TOOLS.json`: the tools it lists (any
`inputSchema` at all); every call answers "ran NAME"."""

import json
import sys


def main() -> None:
    tools = json.loads(open(sys.argv[1]).read())
    for line in sys.stdin:
        message = json.loads(line)
        method, ident = message.get("method"), message.get("id")
        if ident is None:
            continue  # a notification
        if method == "initialize":
            result = {
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "raw", "version": "1"},
            }
        elif method == "tools/list":
            result = {"tools": tools}
        elif method == "tools/call":
            result = {"content": [{"type": "text", "text": f"ran {message['params']['name']}"}]}
        else:
            result = {}
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": ident, "result": result}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
