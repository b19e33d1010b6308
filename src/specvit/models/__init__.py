"""Models: the SpecViT transformer (``vit``)."""
from specvit.models.vit import (PRESETS, SpecViT, ViTConfig, build_vit, count_parameters,
                                flops_per_sample)

__all__ = ["PRESETS", "SpecViT", "ViTConfig", "build_vit", "count_parameters", "flops_per_sample"]
