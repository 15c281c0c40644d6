"""The picture, read as numbers: per-frame statistics in, shot cuts and motion out (no I/O)."""

from .detect import DetectSettings, FrameScorer, FrameStats, cut_frames, picture_cuts

__all__ = ["DetectSettings", "FrameScorer", "FrameStats", "cut_frames", "picture_cuts"]
