"""Inference that follows the registry: ``Follower`` (the hot-swapping model behind
``jupyreg.follow``) and the MLflow-compatible scoring app of ``jupyreg serve``."""
