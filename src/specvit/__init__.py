"""SpecViT pipeline: synthetic PFS-like spectra, models for log g, and their information ceiling."""

__version__ = "0.1.0"
