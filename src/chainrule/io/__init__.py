"""Saving and loading: ``chainrule.save`` / ``chainrule.load`` write and read safetensors checkpoints."""

from .checkpoint import CheckpointError, CheckpointNotFoundError, load, save

__all__ = ["save", "load", "CheckpointError", "CheckpointNotFoundError"]
