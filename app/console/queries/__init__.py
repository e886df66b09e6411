"""The console's read-only SQL (and the one write it owns, revoking a key of the project).

Every statement is owner-scoped through `app/db/scoping.py`, so another project's ids read as
absent, exactly as in the API. Pages are keyset reads (`limit + 1` rows past a cursor); nothing
counts a whole table.
"""
