"""The course's encoder way: sequence classification and extractive QA on a BERT-style encoder.

    python -m labs.encoder --preset sentiment --out run.yaml && python -m labs.encoder --config run.yaml
    python -m labs.evaluation --model lab_data/runs/<run-id> --data drugs-real --task classification

Modules: config (EncoderRunConfig, PRESETS, HELP), data (encoder specs, splits, token features and QA
windows), qa (n-best span search, class weights), recipe (the Trainer job), infer (a trained encoder
answering), results (a run read back: `labs.encoder.results(run_id)` is what the encoder panel shows).
Importing the package registers the encoder predictor with labs.evaluation, so an evaluation of a run whose
recipe is "encoder" is answered with labels or spans instead of generated text.
"""
from labs.encoder import infer
from labs.encoder.results import results
from labs.evaluation.predict import Predictor, register

register("encoder", Predictor(predict=infer.predict, losses=None))

__all__ = ["results"]
