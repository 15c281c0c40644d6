"""Ducking, loudness, limiting and the mix, and the picture of it."""
