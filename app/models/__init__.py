"""The Models API: which model names this Rapport serves."""
