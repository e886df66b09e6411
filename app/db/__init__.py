"""Persistence: the SQLAlchemy declarative base, the tables and the unit of work."""
