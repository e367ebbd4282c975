#!/usr/bin/env python3
"""Cross-checks the golden model fixtures against Hugging Face transformers itself.

The fixtures in packages/models/fixtures/<arch>/ were made by tools/torch_reference.py, a
rendering of transformers' modeling code that needs no transformers install. Where
transformers is installed (it is not on our CI or dev machines), this loads each fixture
directory with AutoModelForCausalLM (eager attention, float32) and compares its logits on
the fixture's inputs (right and left padding, positions = cumsum(mask) − 1 as generate()
uses) and its greedy continuations with expected.json. Prints one JSON line per
architecture and exits 1 on a mismatch.

  python3 tools/check-fixtures-with-transformers.py
"""
import json
import os
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM

ROOT = os.path.join(os.path.dirname(__file__), "..", "packages", "models", "fixtures")
ok = True
for arch in sorted(os.listdir(ROOT)):
    d = os.path.join(ROOT, arch)
    exp = json.load(open(os.path.join(d, "expected.json")))
    model = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32, attn_implementation="eager")
    model.eval()
    ids = torch.tensor(exp["inputIds"])
    mask = torch.tensor(exp["attentionMask"])
    pos = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 1)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
    want = torch.tensor(exp["logits"])
    real = mask.bool()
    diff = (logits - want).abs()[real].max().item()
    scale = want.abs()[real].max().item()
    greedy_ok = True
    for g in exp["greedy"]:
        p = torch.tensor([g["prompt"]])
        with torch.no_grad():
            out = model.generate(p, attention_mask=torch.ones_like(p), max_new_tokens=len(g["ids"]),
                                 do_sample=False, pad_token_id=0)
        greedy_ok &= out[0, p.shape[1]:].tolist() == g["ids"]
    good = diff <= 1e-4 * max(1.0, scale) and greedy_ok
    ok &= good
    print(json.dumps({"arch": arch, "transformers": transformers.__version__, "torch": torch.__version__,
                      "max_abs_logit_diff": diff, "max_abs_logit": scale, "greedy_equal": greedy_ok,
                      "ok": good}))
sys.exit(0 if ok else 1)
