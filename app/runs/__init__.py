"""One run of a response, from the first model call to its stored terminal state."""
