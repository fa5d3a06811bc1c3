"""python -m labs.encoder --config run.yaml | --preset sentiment|qa --out run.yaml (see labs/encoder/recipe.py)."""
import sys

from labs.encoder.recipe import main

if __name__ == "__main__":
    sys.exit(main())
