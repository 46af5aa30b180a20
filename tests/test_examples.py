"""Every gallery example runs to completion (as in CI and the docs build)."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("pandas")  # plot_grid_search shows cv_results_ as a DataFrame

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("plot_*.py"))

# optional dependencies of some examples: without them, those examples are
# skipped (the others still run)
OPTIONAL = {"dask", "distributed"}


def _imported_modules(source):
    """The top-level packages that a script imports."""
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module.split(".")[0])
    return modules


def test_examples_are_found():
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    for module in sorted(_imported_modules(script.read_text()) & OPTIONAL):
        pytest.importorskip(module, reason=f'{script.name} needs pip install "sk_attention[dask]"')
    # One thread each: the examples are small, and OpenMP / BLAS thread pools
    # fighting over a shared 2-core runner made single fits 100x slower.
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    # each example must stay well under a minute on a 2-core machine
    # -W error::UserWarning: a ConvergenceWarning or a scaling warning at the
    # settings an example shows is a failure, and no example silences one
    result = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", str(script)], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    source = script.read_text()
    assert "filterwarnings" not in source and "simplefilter" not in source
    first = script.read_text().lstrip().splitlines()
    assert first[0] == '"""' and set(first[2]) == {"="}, "gallery docstring title"
