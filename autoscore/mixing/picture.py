"""``--report out.png``: one picture that shows whether the mix did the right thing.

A user who hears the music pump or vanish wants to see why at a glance: where speech
was found, what the music's gain did there, where sections and chunks joined, and what
the loudness came out at. matplotlib is optional (``autoscore[report]``) and imported
only here, only when a report is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import OptionError, OutputPathError
from ..media.files import atomic_output
from .mix import MixReport

__all__ = ["write_report"]


def _fmt(value: float | None, unit: str) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.1f} {unit}"


def title_for(report: MixReport) -> str:
    return (
        f"dialogue {_fmt(report.dialogue_lufs, 'LUFS')} | music {_fmt(report.music_lufs, 'LUFS')}"
        f" (gain {report.music_gain_db:+.1f} dB) | final gain {report.final_gain_db:+.1f} dB\n"
        f"mix {_fmt(report.integrated_lufs, 'LUFS')}, true peak {_fmt(report.true_peak_dbtp, 'dBTP')},"
        f" limiter max {report.limiter_reduction_max_db:.1f} dB"
    )


def write_report(
    path: Path,
    report: MixReport,
    *,
    sections: Sequence[float] = (),
    chunks: Sequence[float] = (),
) -> None:
    """Draw ``report`` to ``path`` (format from the suffix: png, svg, pdf).

    ``sections`` and ``chunks`` are boundary times in seconds, drawn as vertical lines.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise OptionError(
            "--report needs matplotlib, which is not installed: pip install 'autoscore[report]'."
        ) from exc

    env = report.envelope
    duration = env.duration
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 5.5), sharex=True, constrained_layout=True)
    try:
        peak = report.original_peak
        times = (np.arange(len(peak)) + 0.5) * report.block_seconds
        top.fill_between(times, -peak, peak, color="0.35", linewidth=0, label="original")
        for i, (start, end) in enumerate(report.speech_regions):
            top.axvspan(start, end, color="tab:orange", alpha=0.25, linewidth=0,
                        label="speech" if i == 0 else None)
        top.set_ylim(-1.05, 1.05)
        top.set_ylabel("original")

        t = np.linspace(0.0, duration, max(2, min(20000, int(duration * env.control_rate) + 1)))
        bottom.plot(t, env.curve_db(t), color="tab:blue", label="music gain")
        bottom.set_ylabel("music gain (dB)")
        bottom.set_xlabel("time (s)")
        bottom.set_xlim(0.0, max(duration, 1e-3))
        for axis in (top, bottom):
            for i, x in enumerate(sections):
                axis.axvline(x, color="tab:green", linewidth=1.2, label="section" if i == 0 else None)
            for i, x in enumerate(chunks):
                axis.axvline(x, color="tab:purple", linewidth=0.8, linestyle="--",
                             label="chunk" if i == 0 else None)
        top.legend(loc="upper right", fontsize="small")
        bottom.legend(loc="lower right", fontsize="small")
        fig.suptitle(title_for(report), fontsize="medium")
        _save(fig, Path(path))
    finally:
        plt.close(fig)


def _save(fig: object, path: Path) -> None:
    """Write next to the target and rename, so a half-drawn picture never appears."""
    fmt = path.suffix.lstrip(".").lower() or "png"
    supported = fig.canvas.get_supported_filetypes()  # type: ignore[attr-defined]
    if fmt not in supported:
        names = ", ".join(f".{k}" for k in sorted(supported))
        raise OptionError(f"Cannot draw a report as .{fmt}: name it with one of {names}.")
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format=fmt)  # type: ignore[attr-defined]
    except OSError as exc:
        raise OutputPathError(f"Cannot write the report to {path}: {exc}. Choose another path.") from exc
