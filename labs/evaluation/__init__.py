"""Evaluation: metrics computed in one place (labs.evaluation.metrics), for the SFT trainer's held-out
scores and every tab that scores answers."""
