"""Smoke tests for benchmarks/: the scripts run and their tables have the right shape.

No figure is checked against a goal here (that is what the benchmark run is for); what
is checked is that the helpers work end to end on tiny real inputs, and the one property
that holds on any machine: autoscore's video stream is the input's, packet for packet.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_cost  # noqa: E402
import bench_render  # noqa: E402
import harness  # noqa: E402
import run as bench_run  # noqa: E402

from autoscore.music.plan import min_chunks  # noqa: E402
from autoscore.text.presets import list_presets, load_preset  # noqa: E402


def _table_rows(markdown: str) -> list[list[str]]:
    """Body rows of the first markdown table in ``markdown``, as lists of cells."""
    lines = [ln for ln in markdown.splitlines() if ln.startswith("|")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]


def test_cost_table_has_a_row_per_builtin_preset() -> None:
    rows = bench_cost.run_cost([1, 10, 60])
    builtin = sorted(p.name for p in list_presets() if p.origin == "built-in")
    assert sorted({r.preset for r in rows}) == builtin
    assert len(rows) == 3 * len(builtin)
    default = {r.minutes: r for r in rows if r.preset == "default"}
    crossfade = load_preset("default").mix.crossfade
    for minutes, row in default.items():
        assert row.requests_crossfade == min_chunks(minutes * 60, crossfade)
        # $0.0217 a music request; outpainting pays it once, then $0.0446 a continuation.
        assert row.cost_crossfade == pytest.approx(row.requests_crossfade * 0.0217)
        assert row.cost_outpaint == pytest.approx(0.0217 + (row.requests_outpaint - 1) * 0.0446)
    table = bench_cost.cost_table(rows).markdown()
    body = _table_rows(table)
    assert [r[0] for r in body] == builtin
    assert all(len(r) == len(bench_cost.cost_table(rows).headers) for r in body)
    expected = " / ".join(str(default[m].requests_crossfade) for m in (1, 10, 60))
    assert body[builtin.index("default")][3] == expected


@pytest.fixture(scope="module")
def render_result(tmp_path_factory: pytest.TempPathFactory) -> bench_render.RenderResult:
    """The render section's helpers on a 3 s 160x90 clip, moviepy baseline included."""
    work = tmp_path_factory.mktemp("bench-render")
    return bench_render.run_render(work, 3, size="160x90", fps=25)


def test_render_keeps_the_video_stream_bit_identical(render_result: bench_render.RenderResult) -> None:
    assert render_result.packets == 75
    assert render_result.autoscore_identical is True
    assert render_result.moviepy_identical is False  # moviepy re-encodes: the check can tell them apart
    assert render_result.autoscore.seconds > 0 and render_result.autoscore.peak_mib > 0
    assert {"probe", "mix", "total"} <= set(render_result.timings)


def test_render_table_has_both_jobs(render_result: bench_render.RenderResult) -> None:
    table = bench_render.render_table(render_result).markdown()
    body = _table_rows(table)
    assert [r[0] for r in body] == ["autoscore score", "moviepy by hand (libx264 defaults)"]
    assert body[0][4].startswith("bit-identical") and body[1][4] == "re-encoded"
    assert body[0][3].endswith("x")
    assert "Goal: at least 20x faster" in table


def test_measure_reports_the_childs_own_peak() -> None:
    """A child that holds 200 MiB shows it; a trivial one after it shows neither that nor our own size."""
    hold = "b = bytearray(200 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])"
    big = harness.measure([sys.executable, "-c", hold])
    small = harness.measure([sys.executable, "-c", "print('{\"ok\": 1}')"])
    assert big.peak_mib > 190
    assert small.peak_mib < big.peak_mib - 100
    assert small.json() == {"ok": 1}


def test_measure_raises_with_the_childs_error() -> None:
    with pytest.raises(RuntimeError, match="boom"):
        harness.measure([sys.executable, "-c", "import sys; sys.exit('boom')"])


def test_run_py_runs_the_cost_section_and_prints_the_machine(capsys: pytest.CaptureFixture[str],
                                                             tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    bench_run.main(["--only", "cost", "--output", str(out)])
    printed = capsys.readouterr().out
    assert "cores" in printed and "Python" in printed and "ffmpeg" in printed
    assert "### Cost per preset" in printed and "### Render" not in printed
    written = out.read_text()
    assert "### Cost per preset" in written and "cores" in written


def test_only_rejects_unknown_sections() -> None:
    assert bench_run.parse_only("cost,render") == ["render", "cost"]
    assert bench_run.parse_only(None) == list(bench_run.SECTIONS)
    with pytest.raises(SystemExit, match="speed"):
        bench_run.parse_only("speed")


def test_cluster_table_states_ratio_overhead_and_the_paper_estimate() -> None:
    import bench_cluster

    threads = bench_cluster.Run("--jobs 2", 30.0, [1.0] * 48, set())
    cluster = bench_cluster.Run("--cluster local:2", 32.0, [1.0] * 48, {"tcp://a", "tcp://b"})
    result = bench_cluster.ClusterResult(48, 20.0, threads, cluster, startup=2.0, dispatch_ms=1.5)
    # (32 - 2) s x 2 slots - 48 s of files, over 48 files
    assert bench_cluster.per_file_overhead(cluster, 2, 2.0) == pytest.approx(0.25)
    text = bench_cluster.cluster_table(result).markdown()
    assert "| --cluster local:2 | 32.0 | 90.0 | 1.00 | 2 | 0.94x |" in text
    assert "10,000 clips on 20 single-thread workers" in text and "1.00 s a file + 0.25 s" in text
