"""The Responses API: routes, use cases, validation and the item store."""
