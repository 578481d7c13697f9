"""A run from spec to record: assembling it, running its stages, its folder, and reading many runs back.

- :mod:`.assemble`: the spec resolved against the dataset and preset, the network built.
- :mod:`.subsets`: the run's data and its seeded subsets.
- :mod:`.runner`: the pipeline (pre-train, fine-tune, evaluate, record) and ``--resume``.
- :mod:`.state`: what a run carries from stage to stage.
- :mod:`.folder`: every path, read and write of a run folder.
- :mod:`.records`: ``result.json`` and ``metrics.csv`` while a run runs.
- :mod:`.liveness`: whether a record saying running still has a live owner, or died (SIGKILL).
- :mod:`.reevaluate`: ``cvbench eval`` of a finished run.
- :mod:`.predictions`: its ``--predictions`` file: each query's top tiles, named and placed.
- :mod:`.leaderboard`: the records of many runs as one table.
- :mod:`.run_settings`: a record's options as text: the leaderboard's option columns, ``--where``, ``--group-by``.
- :mod:`.seed_merge`: the runs of one setting merged over their seeds (mean ± 95% interval).
"""
