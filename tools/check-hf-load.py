#!/usr/bin/env python3
"""Loads an alignjs output directory with transformers 5.17 / PEFT 0.21, as a user would.

  check-hf-load.py --model DIR [--base DIR] --ids '[[...]]' --text TEXT --new-tokens N

--model is `final/` or a `checkpoint-*` directory: full weights (AutoModelForCausalLM), or a
LoRA adapter (with --base: PeftModel.from_pretrained on the base). Prints one JSON object: the
tokenizer's ids for TEXT (AutoTokenizer), the logits for --ids (eager attention, float32), and
the ids a greedy text-generation `pipeline` adds to TEXT.
"""
import argparse
import json

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, pipeline

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--base")
ap.add_argument("--ids", required=True)
ap.add_argument("--text", required=True)
ap.add_argument("--new-tokens", type=int, default=5)
a = ap.parse_args()

tok = AutoTokenizer.from_pretrained(a.model)
if a.base:
    from peft import PeftModel

    base = AutoModelForCausalLM.from_pretrained(a.base, dtype=torch.float32, attn_implementation="eager")
    model = PeftModel.from_pretrained(base, a.model)
else:
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32, attn_implementation="eager")
model.eval()
GenerationConfig.from_pretrained(a.model)  # present and valid
ids = torch.tensor(json.loads(a.ids))
with torch.no_grad():
    logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
gen = pipeline("text-generation", model=model, tokenizer=tok)
out = gen(a.text, max_new_tokens=a.new_tokens, do_sample=False, return_tensors=True)
print(json.dumps({
    "textIds": tok(a.text).input_ids,
    "logits": logits.tolist(),
    "generated": out[0]["generated_token_ids"],
}))
