"""Grids of runs (``cvbench bench``): the grid file, the scheduler, and the report of its findings.

- :mod:`.schema`: the TOML grid file, checked key by key.
- :mod:`.scheduler`: plan the grid's runs, skip the finished, run the rest.
- :mod:`.launchers`: who runs them: this process, or one SLURM job each (:mod:`.submitit_launcher`).
- :mod:`.status`: ``--status``, each run queued, running, finished or failed.
- :mod:`.report`: paired findings over seeds, pre-training evidence, curves.
- ``grids/``: the grids that ship with cvbench (``cvbench bench thesis_synthetic``).
"""
