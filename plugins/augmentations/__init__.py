"""Built-in fine-tuning pair augmentations (thesis section 3.4.2)."""
