"""Built-in experiment trackers (``--logger``): TensorBoard and MLflow, each an optional extra."""
