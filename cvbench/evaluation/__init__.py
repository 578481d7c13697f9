"""Numbers from embeddings: evaluation of a model, the retrieval metrics and their exact engine, statistics.

- :mod:`.evaluate`: embed a subset's images, then run the selected metric plugins.
- :mod:`.metrics`: R@k, ranks and uniformity (public as ``cvbench.metrics``).
- :mod:`.exact_ranking`, :mod:`.exact_scores`, :mod:`.inputs`: the chunked
  exact ranking engine, its exact tie resolution, and the input checks.
- :mod:`.retrieval`: faiss top-k and approximate indexes.
- :mod:`.probe`: the label-free probe of whether pre-training learned.
- :mod:`.statistics`: paired intervals over seeds, Holm's correction, verdicts.
"""
