"""SIGTERM stops ``autoscore`` as Ctrl-C does: nothing half-written, no scratch left behind.

Containers, Dask's nanny and process managers stop programs with SIGTERM, whose default
action ends a process without running its cleanup. A real ``autoscore score`` runs in a
child process here and is stopped while it works.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import make_media


def test_sigterm_mid_score_leaves_no_part_file_and_no_scratch(tmp_path: Path) -> None:
    clip = make_media(tmp_path / "talk.mp4", seconds=60, video="640x360")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoscore", "score", str(clip), "-o", str(out_dir / "talk.mp4"), "-b",
         "procedural", "--no-cache", "--cuts", "off"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    # Stop it while it works: once its scratch folder exists and before it finishes.
    while not any(scratch.iterdir()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    assert proc.poll() is None, "the score finished before it could be stopped; make the clip longer"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "SIGTERM" in err and "Traceback" not in err
    assert list(out_dir.iterdir()) == [], "no output and no .part file"
    assert list(scratch.iterdir()) == [], "no scratch folder or file left"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_after_a_sigkill_the_next_run_removes_what_the_dead_process_left(tmp_path: Path) -> None:
    """No cleanup code runs after SIGKILL; the next output or scratch folder made on this host
    sweeps the orphans of dead processes, and leaves live owners and other hosts alone."""
    from autoscore.media.files import atomic_output, owner_tag, scratch_folder

    dead = owner_tag().replace(f"~{os.getpid()}~", f"~{_dead_pid()}~")
    alive = owner_tag().replace(f"~{os.getpid()}~", f"~{os.getppid()}~")
    elsewhere = f"@another-host~{_dead_pid()}~"
    orphans = [tmp_path / f".talk.{dead}abc.part.mp4", tmp_path / f"autoscore-{dead}xyz"]
    kept = [tmp_path / f".talk.{alive}abc.part.mp4", tmp_path / f".talk.{elsewhere}abc.part.mp4",
            tmp_path / f"autoscore-{alive}xyz", tmp_path / "notes.part.txt"]
    for path in orphans + kept:
        if path.name.startswith("autoscore-"):
            path.mkdir()
            (path / "music.f32").write_bytes(b"\0" * 16)
        else:
            path.write_bytes(b"half")
    with scratch_folder(parent=tmp_path) as work:
        assert work.is_dir() and owner_tag() in work.name
    with atomic_output(tmp_path / "out.mp4") as part:
        part.write_bytes(b"whole")
    assert [p for p in orphans if p.exists()] == []
    assert all(p.exists() for p in kept)
    assert (tmp_path / "out.mp4").read_bytes() == b"whole"
