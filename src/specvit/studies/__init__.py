"""Studies besides the main comparison: the ablations' tables, initial gradient norms, attribution
(where the ViT looks), pre-train -> fine-tune, and domain shift (controlled shifts of the test
data).
"""
