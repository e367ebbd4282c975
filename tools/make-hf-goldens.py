#!/usr/bin/env python3
"""Golden logits made by Hugging Face transformers itself, for @alignjs/models.

For each architecture and RoPE type we support, builds a tiny random model with transformers
(5.17 from the local Python index: .venv-refs, made by tools/setup-reference-python.sh),
saves it with `save_pretrained` (config.json exactly as transformers 5 writes it, with
`rope_parameters`; model.safetensors in float32) into packages/models/fixtures/hf/<name>/,
and writes expected.json: a batch of 2 rows (one left-padded), positions cumsum(mask) − 1
(as generate() makes them) and the eager-attention logits at every position.

  .venv-refs/bin/python tools/make-hf-goldens.py
"""
import json
import os
import shutil

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

OUT = os.path.join(os.path.dirname(__file__), "..", "packages", "models", "fixtures", "hf")
V = 40
SMALL = dict(vocab_size=V, hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4)
LLAMA = dict(SMALL, model_type="llama", num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6)

CASES = {
    # name: (config kwargs, sequence length, what it exercises)
    "gpt2": (dict(model_type="gpt2", vocab_size=V, n_embd=32, n_layer=2, n_head=4, n_positions=64, n_inner=None, bos_token_id=V - 1, eos_token_id=V - 1), 12),
    "llama-default": (dict(LLAMA, rope_parameters={"rope_type": "default", "rope_theta": 500000.0}), 12),
    "llama-linear": (dict(LLAMA, rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}), 12),
    # max_position_embeddings 16 < the 24 positions: dynamic NTK rescales θ for this batch.
    "llama-dynamic": (
        dict(LLAMA, max_position_embeddings=16, rope_parameters={"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0}),
        24,
    ),
    "llama-yarn": (
        dict(LLAMA, head_dim=16, num_attention_heads=2, num_key_value_heads=1,
             rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                              "original_max_position_embeddings": 16}),
        20,
    ),
    # head_dim 8: wavelengths 6.3, 63, 628, 6283 against original 64 / (1, 4): high, medium and low bands.
    "llama-llama3": (
        dict(LLAMA, rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0,
                                     "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                     "original_max_position_embeddings": 64}, max_position_embeddings=128),
        12,
    ),
    "qwen2": (dict(SMALL, model_type="qwen2", num_key_value_heads=2, max_position_embeddings=64,
                   rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, tie_word_embeddings=True), 12),
    # Qwen2.5-style long context: YaRN on qwen2, and a binding sliding window on layer 1.
    "qwen2-sliding": (dict(SMALL, model_type="qwen2", num_key_value_heads=2, max_position_embeddings=64,
                           use_sliding_window=True, sliding_window=5, max_window_layers=1), 12),
    "qwen3": (dict(SMALL, model_type="qwen3", num_key_value_heads=2, head_dim=16, max_position_embeddings=64,
                   rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, tie_word_embeddings=True), 12),
    # sliding_window 5 < 12 tokens: the window binds.
    "mistral": (dict(SMALL, model_type="mistral", num_key_value_heads=2, max_position_embeddings=64, sliding_window=5), 12),
    # Gemma 2: weights large enough (initializer_range 0.15) that both tanh soft-caps bend the
    # scores and logits; layer 0 slides (window 5), layer 1 is full attention.
    "gemma2": (dict(SMALL, model_type="gemma2", num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                    query_pre_attn_scalar=16, sliding_window=5, attn_logit_softcapping=2.0,
                    final_logit_softcapping=3.0, max_position_embeddings=64, initializer_range=0.15), 12),
}


def main():
    torch.manual_seed(0)
    for name, (kw, T) in CASES.items():
        kw = dict(kw)
        model_type = kw.pop("model_type")
        cfg = AutoConfig.for_model(model_type, **kw)
        cfg._attn_implementation = "eager"
        model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager", dtype=torch.float32)
        with torch.no_grad():  # norms away from 1 so a missing norm weight shows
            for n, p in model.named_parameters():
                if n.endswith("norm.weight") or ".ln_" in n or n.startswith("transformer.ln_f"):
                    p.add_(0.2 * torch.randn_like(p))
                elif n.endswith(".bias"):
                    p.add_(0.05 * torch.randn_like(p))
        model.eval()
        d = os.path.join(OUT, name)
        shutil.rmtree(d, ignore_errors=True)
        model.save_pretrained(d, safe_serialization=True)
        for extra in ("generation_config.json",):
            p = os.path.join(d, extra)
            if os.path.exists(p):
                os.remove(p)
        ids = torch.randint(1, V, (2, T))
        mask = torch.ones(2, T, dtype=torch.long)
        mask[1, : T // 3] = 0
        ids = ids * mask
        pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
        logits = logits * mask[..., None]  # pad positions are not compared
        json.dump(
            {
                "transformers": transformers.__version__,
                "torch": torch.__version__,
                "inputIds": ids.tolist(),
                "attentionMask": mask.tolist(),
                "logits": [[[float("%.7g" % float(x)) for x in t] for t in row] for row in logits],
            },
            open(os.path.join(d, "expected.json"), "w"),
            separators=(",", ":"),
        )
        print(name, sum(p.numel() for p in model.parameters()), "params")


if __name__ == "__main__":
    main()
