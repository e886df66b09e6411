"""Rapport: OpenAI's stateful Responses and Conversations APIs in front of any model."""

__version__ = "0.1.0"
