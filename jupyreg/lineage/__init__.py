"""Lineage capture: git, notebook, data, hardware and environment, without MLflow.

Pure capture: this package never imports MLflow, and imports DVC, pandas or pynvml only
lazily, so ``import jupyreg.lineage`` takes milliseconds.
"""

from jupyreg.lineage.capturing import capture
from jupyreg.lineage.record import Lineage

__all__ = ["Lineage", "capture"]
