"""python -m labs.feedback --rounds N --rater shorter [...] | --config run.yaml (see labs/feedback/cli.py)."""
import sys

from labs.feedback.cli import main

if __name__ == "__main__":
    sys.exit(main())
