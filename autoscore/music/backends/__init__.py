"""Music generators, chosen by name.

``auto`` picks the remote generator when ``WAVESPEED_API_KEY`` is set and the embedded
composer otherwise, so a new user with no key still gets music.
"""

from __future__ import annotations

import os

from ...errors import OptionError
from .base import FORMATS, MAX_DURATION, Backend, ContinuationRequest, GenerationRequest

__all__ = [
    "BACKENDS",
    "FORMATS",
    "MAX_DURATION",
    "Backend",
    "ContinuationRequest",
    "GenerationRequest",
    "backend_prices",
    "make_backend",
    "resolve_backend_name",
]

BACKENDS = ("auto", "procedural", "wavespeed")


def resolve_backend_name(name: str, api_key: str | None = None) -> str:
    if name not in BACKENDS:
        raise OptionError(f"Unknown backend {name!r}: use one of {', '.join(BACKENDS)}.")
    if name == "auto":
        return "wavespeed" if (api_key or os.environ.get("WAVESPEED_API_KEY")) else "procedural"
    return name


def backend_prices(name: str) -> tuple[float, float]:
    """(music request, outpainting request) prices in dollars of the resolved backend ``name``."""
    if name == "wavespeed":
        from .wavespeed import WaveSpeedBackend

        return WaveSpeedBackend.price_per_request, WaveSpeedBackend.outpaint_price
    return 0.0, 0.0


def make_backend(
    name: str,
    *,
    api_key: str | None = None,
    api_base: str | None = None,
    concurrency: int | None = None,
) -> Backend:
    """Build the backend ``name`` (after ``auto`` is resolved) with the given options."""
    resolved = resolve_backend_name(name, api_key)
    if resolved == "procedural":
        from .procedural import ProceduralBackend

        return ProceduralBackend(max_concurrency=concurrency or 2)
    from ..shared import current_sharing
    from .wavespeed import WaveSpeedBackend

    # Every job in this process that uses the same account shares one in-flight limit, so
    # a batch learns the account's limit once instead of once per file; on a cluster, a
    # lease under the cluster-wide semaphore is held too.
    return WaveSpeedBackend(api_key=api_key, base_url=api_base, max_concurrency=concurrency,
                            share_account=True, account_lease=current_sharing().lease)
