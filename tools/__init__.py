"""The bundled plugin folder. It ships inside the package as `toolchat.bundled_tools`; toolchat
loads each module here by file path, the same way it loads yours (files starting with `_` are
skipped)."""
