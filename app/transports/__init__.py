"""How a run's events reach a client: Server-Sent Events (and WebSocket)."""
