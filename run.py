#!/usr/bin/env python
"""vnpy_rotation command line: ``python run.py demo | import | ...`` (see README)."""

import sys

from vnpy_rotation.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
