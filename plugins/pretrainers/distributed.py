"""Where ``docs/plugins.md`` used to send third-party code for MoCo's collectives; kept so that code runs on.

The helpers live in the harness (:mod:`cvbench.distributed`, exported by
:mod:`cvbench.nn`); new code imports them from ``cvbench.nn``.
"""

from cvbench.distributed import batch_shuffle, batch_unshuffle, concat_all_gather

__all__ = ["batch_shuffle", "batch_unshuffle", "concat_all_gather"]
