"""The RLHF loop: the current policy generates, people rate, the policy is updated from the ratings, round after round.

    python -m labs.feedback --rounds 3 --rater shorter        # unattended, a scripted rater (cli.py)
    python -m labs.feedback --config run.yaml                  # one policy update, the run-engine job (recipe.py)

loop.py runs rounds (prompts, batched generation, KL, reverts, loop.json); raters.py holds the scripted raters;
rows.py turns ratings into TRL rows (KTO, DPO, reward-model pairs); measure.py gives a round's numbers;
config.py and recipe.py are the update; plots.py draws the history.
"""
