"""`Idempotency-Key` on the routes that create: a blind retry gets the first answer back."""
