"""``python -m jupyreg``: the ``jupyreg`` command."""

import sys

from jupyreg.cli import main

if __name__ == "__main__":  # not when a tool imports every module of the package
    sys.exit(main())
