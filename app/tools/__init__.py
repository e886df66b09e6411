"""Hosted tools: the tools Rapport runs itself between model turns (MCP servers, web search)."""
