"""What the workflow needs when it loads the config, without importing torch: run and ablation
expansion and the cluster sizing of training jobs. The top layer: it may import every other part of
specvit.
"""
