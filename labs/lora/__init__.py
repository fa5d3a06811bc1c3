"""LoRA arithmetic and analysis: counts and scaling (arithmetic), training memory (memory), learned-update
spectra (spectra), rank sweeps (sweep) and their figures (plots).

    python -m labs.lora count --model default --rank 8 --targets q_proj,v_proj
    python -m labs.lora memory --rank 16 --targets all-linear --batch 8 --seq 1024 --gpu-gb 24
    python -m labs.lora sweep --name ranks --ranks 1,2,4,8 --steps 50 --wait

`from labs import lora` gives the arithmetic (lora.count_trainable, lora.LoraError, ...); the other
topics are submodules (`from labs.lora import memory`).
"""
from labs.lora.arithmetic import (
    ALL_LINEAR, DEFAULT_LINEAR_NAMES, ENCODER_TYPES, SCALING_EXPLAINED, SEED_SETTINGS, LoraCount,
    LoraError, ModelShapes, ModuleShape, adapter_file_bytes, check_rank, count_trainable, fmt_bytes,
    load_config, matched_modules, model_shapes, module_lora_params, parse_targets, scaling,
    shapes_from_model, update_magnitude)

__all__ = [
    "ALL_LINEAR", "DEFAULT_LINEAR_NAMES", "ENCODER_TYPES", "SCALING_EXPLAINED", "SEED_SETTINGS",
    "LoraCount", "LoraError", "ModelShapes", "ModuleShape", "adapter_file_bytes", "check_rank",
    "count_trainable", "fmt_bytes", "load_config", "matched_modules", "model_shapes",
    "module_lora_params", "parse_targets", "scaling", "shapes_from_model", "update_magnitude"]
