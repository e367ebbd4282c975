#!/usr/bin/env python3
"""A PEFT 0.21 LoRA adapter with use_rslora: true, saved by peft itself, and its logits.

Base: packages/models/fixtures/hf/llama-default (made by tools/make-hf-goldens.py). The
adapter targets q/k/v/o and the MLP with r = 4, α = 8, rsLoRA (scale α/√r = 4, not α/r = 2);
lora_B is randomized so the adapter changes the logits. Writes
packages/models/fixtures/peft-rslora/{adapter_config.json, adapter_model.safetensors,
expected.json} (the fixture's input ids, mask and the PEFT model's logits).

  .venv-refs/bin/python tools/make-peft-golden.py
"""
import json
import os
import shutil

import peft
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

ROOT = os.path.join(os.path.dirname(__file__), "..", "packages", "models", "fixtures")
BASE = os.path.join(ROOT, "hf", "llama-default")
OUT = os.path.join(ROOT, "peft-rslora")

torch.manual_seed(1)
model = AutoModelForCausalLM.from_pretrained(BASE, dtype=torch.float32, attn_implementation="eager")
cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, use_rslora=True, bias="none", task_type="CAUSAL_LM",
                 target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
pm = get_peft_model(model, cfg)
with torch.no_grad():
    for n, p in pm.named_parameters():
        if "lora_B" in n:
            p.copy_(torch.randn_like(p) * 0.2)
pm.eval()
shutil.rmtree(OUT, ignore_errors=True)
pm.save_pretrained(OUT)
ac = os.path.join(OUT, "adapter_config.json")
c = json.load(open(ac))
c["base_model_name_or_path"] = "../hf/llama-default"  # not this machine's absolute path
c["target_modules"] = sorted(c["target_modules"])  # a set in PEFT: its order varies run to run
json.dump(c, open(ac, "w"), indent=2, sort_keys=True)
readme = os.path.join(OUT, "README.md")
if os.path.exists(readme):
    os.remove(readme)
exp = json.load(open(os.path.join(BASE, "expected.json")))
ids = torch.tensor(exp["inputIds"])
mask = torch.tensor(exp["attentionMask"])
pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
with torch.no_grad():
    logits = pm(input_ids=ids, attention_mask=mask, position_ids=pos).logits * mask[..., None]
    base_logits = torch.tensor(exp["logits"])
print("max |adapter − base| logit change:", float((logits - base_logits).abs().max()))
json.dump({"peft": peft.__version__, "inputIds": exp["inputIds"], "attentionMask": exp["attentionMask"],
           "logits": [[[float("%.7g" % float(x)) for x in t] for t in row] for row in logits]},
          open(os.path.join(OUT, "expected.json"), "w"), separators=(",", ":"))
