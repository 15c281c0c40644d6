"""The contract every music generator meets.

A backend turns one ``GenerationRequest`` (at most 120 s) into decoded ``Audio``. Chunking,
caching, concurrency limits and joining live above it, so a new backend only has to
speak to its generator. Requests are validated here, before any money is spent.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ...errors import OptionError
from ...models import Audio, SectionCue

if TYPE_CHECKING:
    from .retry import Throttle

log = logging.getLogger(__name__)

__all__ = [
    "FORMATS",
    "MAX_DURATION",
    "MAX_SEED",
    "Backend",
    "ContinuationRequest",
    "GenerationRequest",
]

FORMATS: tuple[str, ...] = ("mp3", "wav", "flac", "ogg", "opus", "m4a", "aac")
MAX_DURATION = 120
MAX_EXTEND = 380
MAX_SEED = 2**31 - 1
"""The largest ``seed``: a signed 32-bit integer, the range every backend and cache accepts."""


def _check_seed(seed: object) -> None:
    """Refuse a seed outside 0 .. ``MAX_SEED`` with a message that names it and the range."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise OptionError(f"Seed {seed!r} is out of range: use a whole number from 0 to {MAX_SEED}.")


@dataclass(frozen=True)
class GenerationRequest:
    """The fields of the provider's music endpoint, plus ``seed``.

    The remote model takes no seed; ``seed`` is our variation index. It keeps two chunks
    with identical text from sharing one cache entry, and is the procedural composer's
    random seed. ``opens`` and ``ends`` say whether this piece of music starts or ends the
    whole score (a chunk in the middle does neither; None leaves it to the prompt's words);
    each backend says so in its own terms, the remote model in words and the composer in
    its arrangement.
    """

    prompt: str
    duration: int = 30
    negative_prompt: str = ""
    steps: int = 8
    guidance: float = 1.0
    output_format: str = "wav"
    seed: int = 0
    opens: bool | None = None
    ends: bool | None = None
    cues: tuple[SectionCue, ...] = ()
    """The sections inside this request, on its own clock. The remote model hears them only
    through ``prompt`` (the plan words them in); the embedded composer follows them."""
    downbeat: float | None = None
    """Where a downbeat falls, seconds from the first sample (the grid the cuts were fitted
    to); the embedded composer lays its bars on it, a remote model cannot be told."""

    def validate(self) -> None:
        if not self.prompt or not self.prompt.strip():
            raise OptionError("The prompt is empty: describe the music (style, mood, instruments).")
        if isinstance(self.duration, bool) or not isinstance(self.duration, int):
            raise OptionError(f"Duration must be a whole number of seconds, got {self.duration!r}.")
        if not 1 <= self.duration <= MAX_DURATION:
            raise OptionError(
                f"Duration {self.duration} s is out of range: the generator takes 1 to "
                f"{MAX_DURATION} s per request (autoscore chunks longer music for you)."
            )
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or not 1 <= self.steps <= 100:
            raise OptionError(f"Steps {self.steps!r} is out of range: use a whole number from 1 to 100.")
        if not 0 <= float(self.guidance) <= 25:
            raise OptionError(f"Guidance {self.guidance!r} is out of range: use 0 to 25.")
        if self.downbeat is not None and not 0 <= self.downbeat < 60:
            raise OptionError(f"Downbeat {self.downbeat!r} s is out of range: use 0 to one bar.")
        if self.output_format not in FORMATS:
            raise OptionError(
                f"Unknown format {self.output_format!r}: use one of {', '.join(FORMATS)}."
            )
        _check_seed(self.seed)

    def key_fields(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ContinuationRequest:
    """Extend ``source`` by ``extend_after`` seconds in the same tempo, key and sound."""

    source: Audio
    prompt: str
    extend_after: int
    negative_prompt: str = ""
    steps: int = 8
    guidance: float = 1.0
    output_format: str = "wav"
    seed: int = 0
    ends: bool | None = None
    """Whether the extension ends the whole score (a continuation never opens it)."""
    cues: tuple[SectionCue, ...] = ()
    """The sections inside the extension, on the extension's own clock (0 = the join)."""

    def validate(self) -> None:
        GenerationRequest(
            self.prompt, 1, self.negative_prompt, self.steps, self.guidance, self.output_format, self.seed
        ).validate()
        if not 1 <= self.extend_after <= MAX_EXTEND:
            raise OptionError(f"Extension of {self.extend_after} s is out of range: use 1 to {MAX_EXTEND}.")


class Backend(ABC):
    """One music generator. Subclasses set the class attributes and ``generate``."""

    name: ClassVar[str]
    model: ClassVar[str]
    price_per_request: ClassVar[float] = 0.0
    outpaint_price: ClassVar[float] = 0.0
    reads_cues: ClassVar[bool] = False
    """Whether requests' section cues reach the generator. When they do not (a remote model
    hears only the prompt), they are left out of the request, so they cannot change its cache
    key: a rerun after a neighbouring note moved does not pay again for the same words."""
    max_concurrency: int = 4
    on_throttle: Callable[[Throttle], None] | None = None
    """Told when requests wait on the provider's account limits, for a progress display."""
    on_warning: Callable[[str], None] | None = None
    """Told what the user should know while the job goes on; logged when unset."""

    def warn(self, message: str) -> None:
        if self.on_warning is not None:
            self.on_warning(message)
        else:
            log.warning("%s", message)

    def start_job(self, requests: int, timeout: float | None = None) -> None:  # noqa: B027 - optional hook
        """A job of ``requests`` requests starts; all of it must end within ``timeout`` seconds
        (None: the backend's own default, which grows with the number of requests)."""

    @property
    def spent(self) -> float:
        """Dollars this instance has been charged: completed paid tasks only."""
        return 0.0

    @abstractmethod
    async def generate(self, request: GenerationRequest) -> Audio:
        """Audio of ``request.duration`` seconds (within a few ms), any rate, stereo."""

    async def outpaint(self, request: ContinuationRequest) -> Audio:
        """The source followed by ``extend_after`` new seconds that continue it."""
        raise OptionError(
            f"The {self.name} backend cannot continue audio: use --join crossfade, and --sections each "
            "or blend."
        )

    async def resume(self, task_id: str, request: GenerationRequest | ContinuationRequest) -> Audio | None:
        """The audio of a task made earlier for ``request`` (by a job that died or gave up
        after paying), or None when it cannot be had: nothing to resume, or the task failed
        (refunded) or is unknown to the provider, so asking again is the only way and is
        not paying twice. Backends without tasks keep this default."""
        return None

    async def aclose(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections; called once per job."""
