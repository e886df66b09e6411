"""`python -m app` runs the same command line as the `rapport` script."""

from app.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
