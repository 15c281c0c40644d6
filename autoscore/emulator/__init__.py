"""A local stand-in for WaveSpeedAI's Stable Audio 3 endpoints, served over real HTTP.

No machine here reaches the real service, yet the remote backend must be tested the way
it will be used: over sockets, with statuses that advance over time, account limits, and
the faults a real service shows (rate limits, 5xx, dropped connections, failed tasks,
slow or cut downloads, expired upload URLs, gateway timeouts). This server speaks the
contract in ``docs/wavespeed-api.md`` on 127.0.0.1 only; its music comes from the
procedural composer. It shares no code with the client, so it cannot share its mistakes.

Faults are switched per instance (``Emulator.faults`` or ``POST /_emulator/faults``) and
every request is counted per endpoint (``Emulator.stats`` or ``GET /_emulator/stats``),
so a test can prove, for example, that a submission was sent exactly once.

Modules, by what they stand in for: ``contract`` (routes, formats, ranges, tiers),
``faults``, ``state`` (tasks, account limits, eviction), ``uploads`` (stored media and
signed URLs), ``predictions`` (the prediction API), ``media`` (CDN and upload routes),
``handler`` (HTTP plumbing and routing), ``server`` (the server's life, ``serve``).
"""

from __future__ import annotations

from .contract import DEFAULT_LATENCY
from .contract import FORMATS as FORMATS
from .contract import MUSIC_PATH as MUSIC_PATH
from .contract import OUTPAINT_PATH as OUTPAINT_PATH
from .contract import RESULT_PREFIX as RESULT_PREFIX
from .contract import TIERS as TIERS
from .contract import UPLOAD_PATH as UPLOAD_PATH
from .contract import UPLOADS_PATH as UPLOADS_PATH
from .faults import Faults
from .server import Emulator, serve

__all__ = ["DEFAULT_LATENCY", "Emulator", "Faults", "serve"]
