"""Built-in batch samplers: which training pairs share a fine-tuning batch (``--sampler``)."""
