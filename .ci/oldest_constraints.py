"""Print pip constraints that pin every runtime dependency to its declared minimum.

``.ci/run`` installs the package a second time with these constraints, so
the suite also runs against the oldest numpy, scipy, scikit-learn, joblib
and threadpoolctl that ``pyproject.toml`` admits.
"""

import re
import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
for requirement in project["dependencies"]:
    match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9A-Za-z.]*)\s*", requirement)
    if match is None:
        raise SystemExit(f"cannot pin {requirement!r}: declare runtime dependencies as name>=version")
    print(f"{match[1]}=={match[2]}")
