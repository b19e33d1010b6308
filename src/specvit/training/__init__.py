"""Training runs: the run spec, the ViT trainer (``trainer``, with its ``checkpoints`` and resume,
``optim``, ``scaling`` of the labels and ``device``), the ViT behind the model interface, building
and loading models of every kind, and running one run into its folder.
"""
