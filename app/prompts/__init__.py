"""Prompt templates: stored versions, an admin API and CLI, and rendering into a create."""
