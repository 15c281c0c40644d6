"""autoscore inside other tools (moviepy)."""
