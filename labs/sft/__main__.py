"""python -m labs.sft --config run.yaml | --preset NAME --out run.yaml (see labs/sft/recipe.py)."""
import sys

from labs.sft.recipe import main

if __name__ == "__main__":
    sys.exit(main())
