"""The documentation builds with warnings as errors (needs the docs extra)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

for module in ("sphinx", "numpydoc", "sphinx_gallery", "matplotlib", "sphinx-mathjax-offline"):
    pytest.importorskip(module, reason='the docs extra is not installed: pip install -e ".[docs]"')

ROOT = Path(__file__).resolve().parents[1]


def test_sphinx_build_without_warnings(tmp_path):
    # the gallery's plot_scaling_out runs on a dask LocalCluster
    for module in ("dask", "distributed"):
        pytest.importorskip(
            module, reason='the docs extra is not installed: pip install -e ".[docs]"'
        )
    # -W: warnings are errors; -E: no saved environment.  The gallery runs
    # every example (one thread each, see test_examples.py); generated
    # sources land in docs/ under .gitignore'd directories.
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-E", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(tmp_path / "html")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    html = tmp_path / "html"
    for page in ("index.html", "quickstart.html", "user_guide.html", "api.html",
                 "auto_examples/index.html", "auto_examples/plot_digit_bags.html",
                 "generated/sk_attention.AttentionClassifier.html",
                 "generated/sk_attention.RandomConvolutions.html",
                 "auto_examples/plot_random_convolutions.html",
                 "generated/sk_attention.plotting.AttentionDisplay.html",
                 "scaling_out.html", "auto_examples/plot_scaling_out.html"):
        assert (html / page).is_file(), page
    api = (html / "generated/sk_attention.AttentionClassifier.html").read_text()
    assert "attention_weights" in api
    assert list((html / "_images").glob("sphx_glr_plot_digit_bags_001.png"))
    # the math renders offline: MathJax is served from _static, no CDN
    guide = (html / "user_guide.html").read_text()
    assert "_static/mathjax/tex-chtml.js" in guide and "cdn." not in guide
    assert (html / "_static/mathjax/tex-chtml.js").is_file()
    assert list((html / "_static/mathjax").rglob("*.woff"))  # its fonts too


def test_one_python_version_everywhere():
    import re

    minimum = re.search(
        r'requires-python = ">=(\d+\.\d+)"', (ROOT / "pyproject.toml").read_text()
    )[1]
    for doc in ("README.md", "docs/quickstart.rst"):
        text = (ROOT / doc).read_text()
        assert f"Python {minimum} or newer" in text, doc
        claims = set(re.findall(r"Python (3\.\d+)", text))
        assert claims == {minimum}, (doc, claims)
