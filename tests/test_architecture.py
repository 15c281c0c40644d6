"""The shape of the code, checked: only the media and network edges touch the outside.

Processes (ffmpeg, Dask workers), sockets (the WaveSpeed API, the emulator's server, a
Dask scheduler) and temporary files are what make code hard to test and easy to leak
from. They may be imported only at the edges; everything between the edges works on
frozen dataclasses and decoded audio.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "autoscore"
EDGE_MODULES = ("subprocess", "socket", "tempfile", "httpx", "distributed", "dask")
ALLOWED = (
    "media/",  # ffmpeg and ffprobe, outputs written whole, scratch folders
    "music/backends/wavespeed/",  # the network edge: the provider's API over httpx
    "emulator/",  # a server of its own: sockets, and ffmpeg for its encodes
    "cluster/",  # Dask: a scheduler's connection, worker processes, locks on the scheduler
)


def _imports(path: Path) -> set[str]:
    """Top-level module names imported anywhere in ``path`` (inside functions too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_edges_import_processes_sockets_or_temporary_files() -> None:
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(ALLOWED):
            continue
        found = _imports(path) & set(EDGE_MODULES)
        if found:
            offenders[rel] = sorted(found)
    assert offenders == {}, f"only {', '.join(ALLOWED)} may import {', '.join(EDGE_MODULES)}: {offenders}"


def test_the_check_sees_an_edge_import_where_there_is_one(tmp_path: Path) -> None:
    """The test above must be able to fail: the same reader finds a nested import."""
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    import subprocess\n    from httpx import Client\n")
    assert _imports(sample) & set(EDGE_MODULES) == {"subprocess", "httpx"}
    assert _imports(PACKAGE / "media" / "ffmpeg.py") & {"subprocess"} == {"subprocess"}


def test_modules_stay_small_enough_to_read() -> None:
    """About 500 lines at most."""
    files = PACKAGE.rglob("*.py")
    sizes = {f.relative_to(PACKAGE).as_posix(): len(f.read_text().splitlines()) for f in files}
    over = {name: n for name, n in sizes.items() if n > 520}
    assert over == {}, over


def test_no_public_function_returns_a_private_type() -> None:
    """A caller must be able to name what it gets back."""
    private = re.compile(r"(?<![\w.])_[A-Za-z]\w+")  # a one-letter TypeVar (_F) is no type
    assert private.search("tuple[_Job, int]") and not private.search("Callable[[_F], _F] | np._T")
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        scopes = [tree, *(n for n in tree.body if isinstance(n, ast.ClassDef) and not n.name.startswith("_"))]
        for scope in scopes:
            for node in scope.body:
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.name.startswith("_"):
                    continue
                returns = ast.unparse(node.returns) if node.returns is not None else ""
                if private.search(returns):
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.name} -> {returns}")
    assert offenders == []
