"""Run the demo: ``python -m sk_attention --help``."""

import sys

from ._demo import main

if __name__ == "__main__":
    sys.exit(main())
