"""Training runs: the run spec, the ViT trainer (checkpoints, resume), the ViT behind the model
interface, building and loading models of every kind, and running one run into its folder.
"""
