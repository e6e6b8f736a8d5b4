"""`python -m retag ...`: the acr-retag command line (same as the `acr-retag` console script)."""

import sys

from retag.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
