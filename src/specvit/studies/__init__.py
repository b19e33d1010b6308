"""Studies besides the main comparison: the ablations' tables, initial gradient norms, attribution
(where the ViT looks), pre-train -> fine-tune, domain shift (controlled shifts of the test data),
and the noise-augmentation study's tables.
"""
