"""Configuration: settings, the config files, their keys, MCP server entries, trust."""
