"""Text inputs: scene notes, style presets, and the sections built from them."""
