"""Context building: the stored history a response continues, fitted to the model's window."""
