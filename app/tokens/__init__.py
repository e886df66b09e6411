"""Token counting: offline tokenizers, per-item counts, and what a model's window holds."""
