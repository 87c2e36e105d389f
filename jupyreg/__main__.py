"""``python -m jupyreg``: the ``jupyreg`` command."""

import sys

from jupyreg.cli import main

sys.exit(main())
