"""Supervised fine-tuning: LoRA, full fine-tuning or the top N layers, with TRL's SFTTrainer.

    python -m labs.sft --preset instruction --out run.yaml     # write a config (config.py: SFTRunConfig, presets)
    python -m labs.sft --config run.yaml                       # the job (recipe.py), as the run engine starts it
    python -m labs.sft.export lab_data/runs/<id> --push user/name   # merge and model card (export.py)

data.py finds a dataset and brings its rows into an SFT form; trainer.py holds the CPU speed paths;
results.py reads a run back: `labs.sft.results(run_id)` is what the SFT trainer tab shows.
"""
from labs.sft.results import results

__all__ = ["results"]
