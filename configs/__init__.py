"""Example configs and the JSON Schema of toolchat.yaml; shipped as `toolchat.configs`."""
