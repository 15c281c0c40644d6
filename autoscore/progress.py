"""Progress reporting, kept apart from the pipeline so the CLI can subclass it cheaply."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .music.backends.retry import Throttle
    from .music.plan import Plan

__all__ = ["Reporter"]


class Reporter:
    """Where progress goes. Subclass and override what you want to show; the CLI draws
    bars, ``batch`` collects warnings per file, the library default only logs."""

    def stage(self, name: str) -> None:
        """A stage starts: probe, plan, generate, assemble, mix."""

    def chunk(self, index: int, total: int, state: str) -> None:
        """A chunk changed state: queued, waiting (on another job making the same chunk),
        generating, cached, done, failed."""

    def throttled(self, throttle: Throttle) -> None:
        """Requests are held by the provider's account limits (429s, or all its slots busy)."""

    def warn(self, message: str) -> None:
        """Something the user should know; the job goes on."""

    def plan(self, plan: Plan) -> None:
        """The plan and its cost, before any request is sent."""
