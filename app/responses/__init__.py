"""The Responses API: routes, service, storage, context building and the upstream run."""
