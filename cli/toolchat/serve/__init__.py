"""`toolchat serve`: the project's tools and models behind an OpenAI-compatible endpoint."""
