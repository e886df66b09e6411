"""The pieces of the `rapport` command line beyond `app/cli.py`'s entry point.

parser (every subcommand, its help, defaults and environment variables), serve (the API's
start-up: preflight, banner, upstream probe), keys, records (read-only operator views of
responses and conversations), database (short-lived sessions, the SQLite guard), failures
(expected errors turned into one sentence that says what to do).
"""
