"""Two CPU speed-ups for TRL's SFTTrainer, each with the same loss and gradients as without it.

1. The LM head applied only where a token is trained (AnswerHeadSFTTrainer).

With completion-only loss most positions of a row are prompt: their labels are -100 and their logits
are thrown away. On CUDA, TRL's fused head already skips them (a Triton kernel). Elsewhere (CPU, MPS)
it projects every position through the 49k-word head - in tiles, and again in the backward pass -
because its tiles would recompile on XLA devices if their shape changed. A CPU does not recompile,
so this trainer asks the model for the trained positions' logits only (transformers' boolean
`logits_to_keep`) and takes the cross-entropy over those. Same loss, same metrics (entropy, token
accuracy, tokens seen); on the bundled instruction rows about a quarter of the positions are
scored and a step is 1.4-2x faster on 2 CPU cores (benchmarks/sft_throughput.py --candidates shows
the TRL path as "lab+trl_head").

2. Attention within each row of a padding-free batch (`use_row_attention`). A padding-free batch is one
long sequence of rows; SDPA then attends over the whole of it under a block-diagonal mask, computing
(and masking) every cross-row score: with 8 rows that is ~8x the attention work. FlashAttention's
varlen kernel avoids this on GPUs; on a CPU this attention function runs SDPA row by row, using the
row boundaries the collator passes (`cu_seq_lens_q`). Anything else (generation, padded batches) goes
to transformers' SDPA unchanged. About 1.2x per step on 2 CPU cores ("lab+full_attention").
"""
from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from trl import SFTTrainer

ROW_ATTENTION = "lab_row_sdpa"
FUSED_DEVICES = ("cuda", "xpu")  # TRL's Triton head and FlashAttention varlen already do both jobs there


def wanted(device) -> bool:
    """Whether these speed-ups apply on `device` (a torch.device): everywhere but CUDA/XPU."""
    return device.type not in FUSED_DEVICES


def _row_sdpa(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
    """transformers attention function: causal SDPA per row of a padding-free batch (see the module docstring)."""
    cu = kwargs.get("cu_seq_lens_q")
    if cu is None or query.shape[0] != 1 or query.shape[2] != key.shape[2] or query.shape[2] == 1:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    gqa = getattr(module, "num_key_value_groups", 1) > 1
    bounds = cu.tolist()
    out = torch.cat([F.scaled_dot_product_attention(query[:, :, a:b], key[:, :, a:b], value[:, :, a:b],
                                                    dropout_p=dropout, scale=scaling, is_causal=True, enable_gqa=gqa)
                     for a, b in zip(bounds[:-1], bounds[1:]) if b > a], dim=2)
    return out.transpose(1, 2).contiguous(), None


def use_row_attention(model) -> bool:
    """Switch `model` (a transformers model, before PEFT) to per-row attention; False where it cannot."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
    if getattr(model.config, "_attn_implementation", None) not in ("sdpa", ROW_ATTENTION):
        return False
    AttentionInterface.register(ROW_ATTENTION, _row_sdpa)
    AttentionMaskInterface.register(ROW_ATTENTION, sdpa_mask)  # the fallback gets SDPA's masks
    try:
        model.set_attn_implementation(ROW_ATTENTION)
    except (ValueError, NotImplementedError):
        return False
    return model.config._attn_implementation == ROW_ATTENTION


def supports_logits_mask(model) -> bool:
    """True when the model's forward takes `logits_to_keep` (Llama, Qwen, Mistral, GPT-2 ... in transformers 5)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(type(base).forward).parameters


class AnswerHeadSFTTrainer(SFTTrainer):
    """`answer_head=True`: logits for trained positions only (see the module docstring); else TRL unchanged."""

    def __init__(self, *args, answer_head: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.answer_head = answer_head and supports_logits_mask(self.model)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not self.answer_head or return_outputs or self.aux_loss_enabled or self.label_smoother is not None \
                or self.compute_loss_func is not None or self.args.loss_type != "nll":
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        mode = "train" if self.model.training else "eval"
        labels = inputs["labels"]
        targets = labels[:, 1:]
        keep = torch.zeros_like(labels, dtype=torch.bool)
        keep[:, :-1] = targets != -100  # position t predicts token t+1
        kwargs = {k: v for k, v in inputs.items() if k != "labels"}
        logits = model(**kwargs, use_cache=False, logits_to_keep=keep).logits  # (trained positions, vocab)
        logp = logits.reshape(-1, logits.size(-1)).float().log_softmax(-1)
        gold = targets[targets != -100]
        n = gold.numel() if num_items_in_batch is None else num_items_in_batch
        loss = F.nll_loss(logp, gold, reduction="sum") / torch.as_tensor(n).clamp(min=1)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * (self.accelerator.num_processes // self.get_tp_size())

        with torch.no_grad():  # the metrics TRL logs, from the same log-probabilities
            logp = logp.detach()
            entropy = -(logp.exp() * logp).sum(-1).sum()
            correct = (logp.argmax(-1) == gold).sum()
            gather = self.accelerator.gather_for_metrics
            valid = gather(torch.as_tensor(gold.numel(), device=logp.device)).sum()
            entropy, correct = gather(entropy).sum(), gather(correct).sum()
            self._metrics[mode]["entropy"].append((entropy / valid).item() if valid > 0 else 0.0)
            self._metrics[mode]["mean_token_accuracy"].append((correct / valid).item() if valid > 0 else 0.0)
            if mode == "train":
                seen = inputs["attention_mask"].sum() if "attention_mask" in inputs else \
                    torch.as_tensor(inputs["input_ids"].size(1), device=labels.device)
                self._total_train_tokens += gather(seen).sum().item() // self._tp_size
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
        return loss
