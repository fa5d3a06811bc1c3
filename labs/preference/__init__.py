"""Preference data and training: people choose between two generations, DPO or ORPO trains on the choices.

    python -m labs.preference make-pairs --n 20 [--model SPEC] [--prompts NAME] [--max-new-tokens K]
    python -m labs.preference refill --annotator ana [--keep 3] [--n 8]   # more pairs when 3 or fewer are left
    python -m labs.preference export --out pairs.jsonl [--format dpo|kto]
    python -m labs.preference --config run.yaml            # DPO / ORPO through the run engine
    python -m labs.preference simulate --rater shorter --pairs 32

pairs.py makes pairs (labs.generate) into the store (labs.store), refill.py more of them when an annotator
runs low; labels.py turns labels into TRL rows and measures agreement; config.py, recipe.py train; odds.py
explains ORPO; simulate.py runs the loop unattended; results.py reads a run back:
`labs.preference.results(run_id)` is what the Preference tab shows.
"""
from labs.preference.results import results

__all__ = ["results"]
