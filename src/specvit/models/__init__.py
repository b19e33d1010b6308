"""Models behind one interface (``base``; input checks in ``checks``): the SpecViT transformer
(``vit``, its positional encodings in ``positional``; its config ``vit_config`` imports without
torch), the baselines LightGBM (``lightgbm``) and Ridge (``ridge``), and the template fit
(``template``, settings in ``template_config``)."""
from specvit.models.vit_config import PRESETS, ViTConfig, flops_per_sample

__all__ = ["PRESETS", "SpecViT", "ViTConfig", "build_vit", "count_parameters", "flops_per_sample"]


def __getattr__(name):
    # The torch model is imported on first use, so that reading configs stays torch-free.
    if name in ("SpecViT", "build_vit", "count_parameters"):
        from specvit.models import vit

        return getattr(vit, name)
    raise AttributeError(f"module 'specvit.models' has no attribute {name!r}")
