"""Built-in evaluation metrics: top-k recall with VIGOR's hit rate, and the uniformity of the embeddings."""
