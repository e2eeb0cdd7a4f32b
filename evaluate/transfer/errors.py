"""The transfer protocols' errors (both frameworks)."""
from __future__ import annotations


class TransferError(RuntimeError):
    """A transfer run that cannot start or did not finish (the message says which and why)."""


class TrainingDiverged(TransferError, FloatingPointError):
    """A transfer run whose loss became NaN / inf (the message names the iteration)."""


__all__ = ["TrainingDiverged", "TransferError"]
