"""The music: plan the chunks, generate them (backends, cache), and assemble the joins."""
