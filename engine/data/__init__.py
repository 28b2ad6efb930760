"""Datasets: loaders for MovieLens, DisGeNET and the embedded demo, plus the phase protocol."""

from engine.data.base import Dataset

__all__ = ["Dataset"]
