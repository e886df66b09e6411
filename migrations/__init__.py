"""Alembic migrations; shipped inside the package so `rapport db upgrade` works from a wheel."""
