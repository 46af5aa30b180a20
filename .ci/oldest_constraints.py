"""Print pip constraints that pin every runtime dependency to its declared minimum.

``.ci/run`` installs the package a second time with these constraints, so
the suite also runs against the oldest numpy, scipy, scikit-learn, joblib
and threadpoolctl that ``pyproject.toml`` admits.  (No tomllib: it runs on
every Python the package supports.)
"""

import re
from pathlib import Path

text = (Path(__file__).parents[1] / "pyproject.toml").read_text()
block = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.M | re.S)
if block is None:
    raise SystemExit("no dependencies = [...] in pyproject.toml")
for requirement in re.findall(r'"([^"]+)"', block[1]):
    match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9A-Za-z.]*)\s*", requirement)
    if match is None:
        raise SystemExit(f"cannot pin {requirement!r}: declare runtime dependencies as name>=version")
    print(f"{match[1]}=={match[2]}")
