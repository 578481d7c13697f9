"""A run from spec to record: assembling it, running its stages, its folder, and reading many runs back.

- :mod:`.assemble`: the spec resolved against the dataset and preset, the network built.
- :mod:`.subsets`: the run's data and its seeded subsets.
- :mod:`.runner`: the pipeline (pre-train, fine-tune, evaluate, record) and ``--resume``.
- :mod:`.state`: what a run carries from stage to stage.
- :mod:`.folder`: every path, read and write of a run folder.
- :mod:`.records`: ``result.json`` and ``metrics.csv`` while a run runs.
- :mod:`.reevaluate`: ``cvbench eval`` of a finished run.
- :mod:`.leaderboard`: the records of many runs as one table.
"""
