"""Batch on a real Dask cluster: worker processes, the scheduler's locks and semaphores.

Every cluster here is real: a ``LocalCluster`` of two worker *processes* (shared by the
module), or ``dask scheduler`` and ``dask worker`` started as commands. The workers talk
to the emulator over loopback HTTP, so what the account saw (tasks accepted, running at
once, refused) is counted by the emulator, not by autoscore.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_media
from emulator_fixtures import TEST_KEY

from autoscore.batch import BatchResult, run_batch
from autoscore.emulator import Emulator
from autoscore.errors import ClusterError, OptionError
from autoscore.media.probe import probe

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow

LEASE_TIMEOUT = "5s"
"""How soon a dead worker's claims and account leases expire here (Dask's default is 30 s)."""


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    config = {"distributed.scheduler.locks.lease-timeout": LEASE_TIMEOUT,
              "distributed.scheduler.locks.lease-validation-interval": "0.5s"}
    with dask.config.set(config), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                     dashboard_address=None, silence_logs=40) as cluster, \
            distributed.Client(cluster, set_as_default=False) as c:
        yield c


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six clips: three copies of one 3 s clip (same music), and three of other lengths."""
    folder = tmp_path_factory.mktemp("clips")
    first = make_media(folder / "same-a.mp4", seconds=3.0)
    shutil.copy(first, folder / "same-b.mp4")
    shutil.copy(first, folder / "same-c.mp4")
    for seconds in (4, 5, 6):
        make_media(folder / f"other-{seconds}.mp4", seconds=float(seconds))
    return folder


def remote(emu: Emulator, cache: Path, **more: Any) -> dict[str, Any]:
    return {"backend": "wavespeed", "api_key": TEST_KEY, "api_base": emu.base_url, "cache_dir": str(cache),
            "cuts": "off", **more}


def check_outputs(result: BatchResult, count: int) -> None:
    assert result.count("ok") == count, [o.message for o in result.outcomes]
    for o in result.outcomes:
        assert o.output is not None and o.worker is not None and o.worker.startswith("tcp://")
        info = probe(o.output)
        assert info.video is not None and info.audio is not None
        assert info.duration == pytest.approx(probe(o.input).duration, abs=0.1)


def distinct_bodies(emu: Emulator) -> int:
    return len({json.dumps(b, sort_keys=True) for b in emu.submitted_bodies})


def test_six_clips_three_identical_pay_once_per_distinct_chunk(client: Any, clips: Path,
                                                               tmp_path: Path) -> None:
    with Emulator(latency=0.3, seed=11, api_key=TEST_KEY) as emu:
        statuses: list[Any] = []
        result = run_batch([clips], tmp_path / "out", cluster=client, on_cluster=statuses.append,
                           **remote(emu, tmp_path / "cache"))
        check_outputs(result, 6)
        assert emu.stats["accepted"] == 4 == distinct_bodies(emu)  # the three copies share one task
        assert len({o.worker for o in result.outcomes}) == 2  # both workers took part
        assert sum(o.details["cache_hits"] for o in result.outcomes) == 2
        assert statuses[-1].done == 6 and statuses[-1].running == statuses[-1].in_flight == 0
        assert max(s.in_flight for s in statuses) >= 1
        assert all(s.workers == 2 for s in statuses)
        # A rerun skips every finished output without sending anything.
        again = run_batch([clips], tmp_path / "out", cluster=client, **remote(emu, tmp_path / "cache"))
        assert again.count("skipped") == 6 and emu.stats["accepted"] == 4
        assert all(o.worker is None for o in again.outcomes)


def test_the_whole_cluster_stays_under_the_accounts_running_limit(client: Any, clips: Path,
                                                                  tmp_path: Path) -> None:
    """Two running at most on the account, --concurrency 2: four files at a time (two
    workers of two threads) would ask for four, and each worker's own gate allows two; the
    cluster-wide semaphore keeps them all under the account's limit without a single 429."""
    with Emulator(latency=0.6, seed=12, api_key=TEST_KEY) as emu:
        emu.max_running = 2
        result = run_batch([clips], tmp_path / "out", cluster=client, concurrency=2, use_cache=False,
                           **{k: v for k, v in remote(emu, tmp_path / "cache").items() if k != "cache_dir"})
        check_outputs(result, 6)
        assert emu.stats["peak_running"] <= 2
        assert emu.stats["rate_limited"] == 0
        assert emu.stats["accepted"] == 6  # no cache: every file pays for its own chunk


def test_without_concurrency_the_cluster_learns_the_limit_from_the_accounts_429s(
        client: Any, clips: Path, tmp_path: Path) -> None:
    with Emulator(latency=0.6, seed=14, api_key=TEST_KEY) as emu:
        emu.max_running = 2
        statuses: list[Any] = []
        result = run_batch([clips], tmp_path / "out", cluster=client, use_cache=False,
                           on_cluster=statuses.append,
                           **{k: v for k, v in remote(emu, tmp_path / "cache").items() if k != "cache_dir"})
        check_outputs(result, 6)
        assert emu.stats["rate_limited"] >= 1 and emu.stats["accepted"] == 6
        learnt = [s.account_limit for s in statuses if s.account_limit is not None]
        assert learnt[0] == 8 and min(learnt) <= 4  # four threads at most were running


def test_the_cluster_learns_the_accounts_limit_from_429s_and_parks_the_rest(client: Any) -> None:
    """Two leases held by workers, then a 429: the limit falls to two and the submitting
    process holds the other places; two completed tasks give one place back."""
    import uuid

    from autoscore.cluster.account import ClusterAccount

    name = f"autoscore-account-test-{uuid.uuid4().hex}-4"
    account = ClusterAccount(client, name, 4)
    workers = distributed.Semaphore(max_leases=4, name=name, scheduler_rpc=client.scheduler, loop=client.loop)
    try:
        assert workers.acquire(timeout=5) and workers.acquire(timeout=5)
        account.answer("refused")
        account.answer("refused")  # the same round: learnt once
        deadline = time.monotonic() + 10
        while account.parked < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (account.limit, account.parked, account.refusals) == (2, 2, 2)
        assert not workers.acquire(timeout=0.5)  # the account is full for the cluster
        account.answer("succeeded")
        account.answer("succeeded")
        assert workers.acquire(timeout=5)  # a limit's worth of successes: one more place
        assert account.limit == 3
    finally:
        account.close()
        for _ in range(3):
            workers.release()
    assert account.parked == 0


def test_a_worker_killed_while_it_waits_on_a_paid_task_costs_nothing_twice(client: Any, clips: Path,
                                                                           tmp_path: Path) -> None:
    """SIGKILL the worker whose task the provider is still making: Dask moves the file, the
    dead worker's claim expires, and the next worker collects the same task by its id."""
    with Emulator(latency=4.0, seed=13, api_key=TEST_KEY) as emu:
        done: list[BatchResult] = []
        run = threading.Thread(target=lambda: done.append(run_batch(
            [clips / "other-4.mp4"], tmp_path / "out", cluster=client, **remote(emu, tmp_path / "cache"))))
        run.start()
        deadline = time.monotonic() + 60
        while emu.stats["accepted"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert emu.stats["accepted"] == 1
        busy = [w for w, keys in client.processing().items() if keys]
        assert len(busy) == 1
        pids = client.run(os.getpid)
        os.kill(pids[busy[0]], signal.SIGKILL)
        run.join(timeout=120)
        assert done, "the batch did not finish"
        check_outputs(done[0], 1)
        assert done[0].outcomes[0].worker != busy[0]
        assert done[0].outcomes[0].details["resumed"] == 1
        assert emu.stats["accepted"] == 1  # collected by its task id, never bought again
        client.wait_for_workers(2, timeout=60)  # the nanny brought the dead one back


def test_an_input_a_worker_cannot_read_fails_naming_worker_and_path(client: Any, tmp_path: Path) -> None:
    from autoscore.cluster import score_on_cluster
    from autoscore.options import ScoreOptions

    missing = tmp_path / "only-on-my-laptop.mp4"
    [outcome] = score_on_cluster([(missing, tmp_path / "x.scored.mp4", ScoreOptions(backend="procedural"))],
                                 client, force=False, retries=0)
    assert outcome.status == "failed" and outcome.worker is not None
    assert outcome.worker in outcome.message and str(missing) in outcome.message


def test_file_urls_are_paths_on_the_cluster(client: Any, clips: Path, tmp_path: Path) -> None:
    result = run_batch([f"file://{clips}/other-5.mp4"], f"file://{tmp_path}/out", cluster=client,
                       backend="procedural", cuts="off", cache_dir=f"file://{tmp_path}/cache")
    check_outputs(result, 1)
    assert result.outcomes[0].output == tmp_path / "out" / "other-5.scored.mp4"
    assert list((tmp_path / "cache" / "audio").rglob("*.f32"))


def test_workers_of_another_version_are_named_before_any_file_is_sent(client: Any) -> None:
    from autoscore.cluster.connect import check_workers

    with pytest.raises(ClusterError, match=r"Worker\(s\) tcp://.* run another autoscore version"):
        check_workers(client, expected="0.0.0")
    assert len(check_workers(client)) == 2


# -- the command line against a scheduler and workers started as commands ----------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def autoscore(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autoscore", *args], capture_output=True, text=True,
                          timeout=timeout)


def scratch_in(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith("autoscore-")]


class DaskCommands:
    """``dask scheduler`` and ``dask worker`` started as commands, as an operator would."""

    def __init__(self) -> None:
        self.command = str(Path(sys.executable).with_name("dask"))
        port = free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        self.processes: list[subprocess.Popen[bytes]] = [subprocess.Popen(
            [self.command, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]

    def worker(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([self.command, "worker", self.address, "--no-dashboard", *args],
                                env={**os.environ, **(env or {})},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes.insert(0, proc)
        return proc

    def __enter__(self) -> DaskCommands:
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.processes:
            p.kill()
            p.wait(timeout=30)


def test_batch_on_a_scheduler_and_worker_started_with_the_dask_commands(clips: Path, tmp_path: Path) -> None:
    with DaskCommands() as dask_:
        dask_.worker("--nworkers", "1", "--nthreads", "2")
        proc = autoscore("batch", str(clips / "other-4.mp4"), str(clips / "same-a.mp4"), "-o",
                         str(tmp_path / "out"), "--cluster", dask_.address, "--backend", "procedural",
                         "--cache-dir", f"file://{tmp_path / 'cache'}", "--json")
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)
        assert report["ok"] == 2
        assert list((tmp_path / "cache" / "audio").rglob("*.f32"))  # the file:// URL is that folder
        assert {f["worker"] for f in report["files"]} == {f["worker"] for f in report["files"][:1]}
        assert report["files"][0]["worker"].startswith("tcp://127.0.0.1:")
        for f in report["files"]:
            assert probe(Path(f["output"])).audio is not None


def test_a_worker_stopped_with_sigterm_mid_file_cleans_up_and_the_file_moves(tmp_path: Path) -> None:
    """Dask's nanny, a container or a job scheduler stops a worker with SIGTERM while it
    renders: its ffmpegs end, its ``.part`` output and scratch folder go, and the file is
    scored by the other worker."""
    clip = make_media(tmp_path / "long.mp4", seconds=240.0, video="160x90")
    out = tmp_path / "out"
    temps = [tmp_path / "worker0-tmp", tmp_path / "worker1-tmp"]
    with DaskCommands() as dask_:
        workers = []
        for temp in temps:
            temp.mkdir()
            workers.append(dask_.worker("--nthreads", "1", env={"TMPDIR": str(temp)}))
        batch = subprocess.Popen([sys.executable, "-m", "autoscore", "batch", str(clip), "-o", str(out),
                                  "--cluster", dask_.address, "--backend", "procedural", "--cuts", "off",
                                  "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not (out.is_dir() and list(out.glob(".*.part*"))):
                time.sleep(0.02)
            assert list(out.glob(".*.part*")), "the render never started"
            busy = [i for i, t in enumerate(temps) if scratch_in(t)]
            assert len(busy) == 1
            with distributed.Client(dask_.address, set_as_default=False) as look:
                temp_of = look.run(os.getenv, "TMPDIR")
            stopped = next(a for a, t in temp_of.items() if t == str(temps[busy[0]]))
            workers[busy[0]].send_signal(signal.SIGTERM)
            workers[busy[0]].wait(timeout=90)
            assert not scratch_in(temps[busy[0]])
            stdout, stderr = batch.communicate(timeout=180)
        finally:
            batch.kill()
            batch.wait(timeout=30)
    assert batch.returncode == 0, stderr
    [scored] = json.loads(stdout)["files"]
    assert scored["status"] == "ok"
    assert scored["worker"] != stopped  # stopped part way, not allowed to finish
    assert not list(out.glob(".*.part*"))
    assert probe(out / "long.scored.mp4").duration == pytest.approx(240.0, abs=0.1)


def test_a_worker_without_autoscore_is_named_and_nothing_is_sent(clips: Path, tmp_path: Path) -> None:
    """A worker whose environment has no autoscore package (its metadata hidden by a Dask
    preload, since this machine has one environment) is named before any file is sent."""
    hide = tmp_path / "hide_autoscore.py"
    hide.write_text(
        "import importlib.metadata as md\n"
        "_real = md.version\n"
        "def version(name):\n"
        "    if name == 'autoscore':\n"
        "        raise md.PackageNotFoundError(name)\n"
        "    return _real(name)\n"
        "md.version = version\n"
    )
    with DaskCommands() as dask_:
        dask_.worker("--nthreads", "1", "--preload", str(hide))
        proc = autoscore("batch", str(clips / "same-a.mp4"), "-o", str(tmp_path / "out"),
                         "--cluster", dask_.address, "--backend", "procedural")
    assert proc.returncode == 1
    [line] = proc.stderr.strip().splitlines()
    assert "autoscore is not installed on worker(s) tcp://127.0.0.1:" in line
    assert "pip install 'autoscore[dask]'" in line
    assert not list((tmp_path / "out").glob("*.mp4"))


def test_local_cluster_from_the_command_line_says_only_what_matters(clips: Path, tmp_path: Path) -> None:
    """Dask logs its own life at INFO; the terminal shows the cluster line and the files."""
    proc = autoscore("batch", str(clips / "other-6.mp4"), "-o", str(tmp_path / "out"), "--cluster", "local:1",
                     "--backend", "procedural", "--cuts", "off")
    assert proc.returncode == 0, proc.stderr
    assert "distributed" not in proc.stderr and "INFO" not in proc.stderr
    assert proc.stderr.splitlines()[0].startswith("Cluster: 1 worker(s); dashboard http://")
    assert "other-6.scored.mp4" in proc.stdout


def test_ctrl_c_during_generation_leaves_no_scratch_and_the_rerun_collects_the_paid_task(
        clips: Path, tmp_path: Path) -> None:
    """Ctrl-C on ``batch --cluster local:1`` while the provider makes a paid task, sent to the
    whole process group as a terminal does: the worker stops its job (no scratch left, no
    traceback), the task's note stays in the cache, and the rerun collects that task
    instead of buying it again."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    with Emulator(latency=4.0, seed=15, api_key=TEST_KEY) as emu:
        args = [sys.executable, "-m", "autoscore", "batch", str(clips / "other-5.mp4"),
                "-o", str(tmp_path / "out"), "--cluster", "local:1", "--backend", "wavespeed",
                "--api-base", emu.base_url, "--cuts", "off", "--cache-dir", str(tmp_path / "cache")]
        env = {**os.environ, "TMPDIR": str(temp), "WAVESPEED_API_KEY": TEST_KEY}
        batch = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 start_new_session=True)
        deadline = time.monotonic() + 60
        while emu.stats["accepted"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(batch.pid, signal.SIGINT)  # as a terminal does: to the whole group, workers included
        _, stderr = batch.communicate(timeout=60)
        assert batch.returncode == 130
        assert "Traceback" not in stderr and "ERROR" not in stderr
        assert not scratch_in(temp)
        assert len(list((tmp_path / "cache").rglob("*.task"))) == 1
        rerun = subprocess.run([*args, "--json"], env=env, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
        [scored] = json.loads(rerun.stdout)["files"]
        assert scored["status"] == "ok" and scored["resumed"] == 1
        assert emu.stats["accepted"] == 1


def test_an_unreachable_scheduler_is_one_clear_line(clips: Path, tmp_path: Path) -> None:
    proc = autoscore("batch", str(clips / "same-a.mp4"), "-o", str(tmp_path / "out"), "--cluster",
                     f"tcp://127.0.0.1:{free_port()}", "--backend", "procedural", timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Cannot reach the Dask scheduler" in lines[0] and "within 5 s" in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize(("args", "message"), [
    (["--cluster", "local:0"], "local:1 to local:64"),
    (["--cluster", "somewhere"], "neither a scheduler address"),
    (["--cluster", "local:2", "--jobs", "3"], "--jobs does not apply with --cluster"),
    (["--cluster", "http://127.0.0.1:8787/status"], "give the scheduler's, tcp://HOST:8786"),
])
def test_cluster_usage_errors(clips: Path, tmp_path: Path, args: list[str], message: str) -> None:
    proc = autoscore("batch", str(clips / "same-a.mp4"), "-o", str(tmp_path / "out"), *args, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_a_cluster_of_threads_in_this_process_leaves_its_ffmpeg_alone(clips: Path, tmp_path: Path) -> None:
    """A notebook's ``Client(processes=False)``: closing it must not stop this process's ffmpegs."""
    from autoscore import shutdown

    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0",
                                  silence_logs=40) as local, \
            distributed.Client(local, set_as_default=False) as threads:
        result = run_batch([clips / "same-a.mp4"], tmp_path / "out", cluster=threads, backend="procedural",
                           cuts="off")
        assert result.count("ok") == 1
    assert shutdown.stopping() is None
    assert probe(tmp_path / "out" / "same-a.scored.mp4").audio is not None


def test_a_missing_dask_extra_is_a_usage_error_before_any_work(clips: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    with pytest.raises(OptionError, match=r"pip install 'autoscore\[dask\]'"):
        run_batch([clips], tmp_path / "out", cluster="local:2", backend="procedural")
    assert not (tmp_path / "out").exists()


def test_workers_get_the_cache_folder_and_key_set_here(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    from autoscore.cluster.run import for_workers
    from autoscore.options import ScoreOptions

    monkeypatch.setenv("AUTOSCORE_CACHE_DIR", str(tmp_path / "shared"))
    monkeypatch.setenv("WAVESPEED_API_KEY", TEST_KEY)
    shipped, lease = for_workers(ScoreOptions(concurrency=3))
    assert shipped.cache_dir == str(tmp_path / "shared")
    assert (shipped.backend, shipped.api_key) == ("wavespeed", TEST_KEY)
    assert lease is not None and lease[1] == 3 and TEST_KEY not in lease[0]


def test_workers_on_several_machines_without_a_shared_cache_are_warned_about() -> None:
    """Two worker hosts cannot be had on this one machine: the scheduler's answer is stood in for."""
    from autoscore.cluster.run import _cache_caveat
    from autoscore.options import ScoreOptions

    class TwoHosts:
        def scheduler_info(self) -> dict[str, Any]:
            return {"workers": {"tcp://10.0.0.1:1": {"host": "10.0.0.1"},
                                "tcp://10.0.0.2:1": {"host": "10.0.0.2"}}}

    remote_opts = ScoreOptions(backend="wavespeed", api_key=TEST_KEY)
    caveat = _cache_caveat(TwoHosts(), remote_opts)
    assert caveat is not None and "2 machines" in caveat and "--cache-dir" in caveat
    assert _cache_caveat(TwoHosts(), ScoreOptions(backend="wavespeed", api_key=TEST_KEY,
                                                  cache_dir="s3://bucket/cache")) is None
    assert _cache_caveat(TwoHosts(), ScoreOptions(backend="procedural")) is None
