"""Sphinx configuration of the sk_attention documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html`` (the docs extra:
``pip install -e ".[docs]"``).  No network is needed: intersphinx is off and
the gallery runs the examples on bundled data.
"""

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")

import sk_attention  # noqa: E402

project = "sk_attention"
author = "sk_attention developers"
copyright = "sk_attention developers, BSD 3-Clause"
version = release = sk_attention.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    # MathJax copied into _static: the math renders offline, without a CDN
    "sphinx-mathjax-offline",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py"]
html_theme = "alabaster"
html_static_path = ["_static"]
html_theme_options = {"description": "Attention pooling as scikit-learn estimators"}

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "within_subsection_order": "FileNameSortKey",
    "image_scrapers": ("matplotlib",),
    "remove_config_comments": True,
    "reset_modules": ("matplotlib",),
    "show_memory": False,
    "doc_module": ("sk_attention",),
    "backreferences_dir": "generated/backreferences",
}


def _skip_inherited_from_sklearn(app, what, name, obj, skip, options):
    """Document our own methods only.

    ``attention_weights`` lives in the private base class and must be shown,
    so inherited members are on; the methods that scikit-learn's mixins
    provide (``score``, ``set_params``, ``set_output``, ...) are left to
    scikit-learn's documentation.
    """
    module = getattr(obj, "__module__", None) or ""
    if what == "class" and not module.startswith("sk_attention"):
        return True
    return None


# In reST a bare ``n_features_in_`` is a hyperlink reference; the docstrings
# write it plainly (as help() shows it), so quote it here for Sphinx.
_BARE_FEATURES_IN = re.compile(r"(?<![`\w])n_features_in_(?![`\w]| :)")


def _quote_n_features_in(app, what, name, obj, options, lines):
    lines[:] = [_BARE_FEATURES_IN.sub("``n_features_in_``", line) for line in lines]


def setup(app):
    app.connect("autodoc-skip-member", _skip_inherited_from_sklearn)
    # before numpydoc (priority 500) rewrites the sections
    app.connect("autodoc-process-docstring", _quote_n_features_in, priority=100)
