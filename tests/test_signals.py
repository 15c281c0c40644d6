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
