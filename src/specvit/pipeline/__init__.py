"""What the workflow decides when it loads the config, without importing torch; the Snakefile and
``workflow/rules/*.smk`` only declare rules around it. The top layer: it may import every other part
of specvit.

* ``config``: the one entry point, ``prepare(config)``: defaults, every check (one ConfigError), the plan
* ``schema``: the schema's defaults and its errors as short messages naming each key
* ``userfiles``: what cannot apply to the user's own HDF5 files
* ``runs``, ``ablations``, ``studies``, ``augmentation``: run groups (and their seed runs), ablations,
  studies and the noise-augmentation study's arms expanded into run specs
* ``seeds``: the seed of every random stream; ``targets``: paths and what ``rule all`` builds
* ``codehash``: the ``code`` param of every scripted rule; ``outputs``: outputs for the HTML report
* ``cluster``, ``job_resources``: Slurm sizing of the training jobs and the GPU-hours of a plan
"""
