#!/usr/bin/env python3
"""Per-step DPO losses from TRL 1.13's DPOTrainer, for the end-to-end parity test of `alignjs train`.

For each tokenizer of packages/trainer/fixtures/trl-tokenization/ (made by
tools/make-trl-tokenization-goldens.py), builds a tiny random model of a matching architecture
with transformers 5.17 (llama-sp → Llama, gpt2-bytelevel → GPT-2, qwen-chat → Qwen2), saves
it with the tokenizer into packages/cli/fixtures/trl-dpo/<name>/model/, writes an 8-row plain
dataset (and, with a chat template, a conversational one), and trains with trl.DPOTrainer
from that directory: one batch of 8, 10 steps, fp32 on CPU, lr 1e-3 linear, β 0.1,
max_grad_norm 1, no dropout. The exact loss of every step (not the 4-decimal logged one) is
recorded by overriding compute_loss, and written to expected.json.

  .venv-refs/bin/python tools/make-trl-dpo-curves.py
"""
import json
import os
import shutil
import tempfile

import torch
import transformers
import trl
from datasets import Dataset
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer

ROOT = os.path.join(os.path.dirname(__file__), "..")
TOK = os.path.join(ROOT, "packages", "trainer", "fixtures", "trl-tokenization")
OUT = os.path.join(ROOT, "packages", "cli", "fixtures", "trl-dpo")
HP = dict(learning_rate=1e-3, beta=0.1, max_steps=10, per_device_train_batch_size=8, max_grad_norm=1.0,
          lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.0, seed=0)

PLAIN = [
    {"prompt": "The capital of France is", "chosen": " Paris.", "rejected": " Rome."},
    {"prompt": "Question: what is two plus two? Answer:", "chosen": " four.", "rejected": " five."},
    {"prompt": "Write a short poem about the ", "chosen": "sea and the sky.", "rejected": "dog."},
    {"prompt": "Hello there!", "chosen": "How are you doing?", "rejected": "Go away."},
    {"prompt": "It is sunny today;", "chosen": " tomorrow it will rain.{eos}", "rejected": " it is cold."},
    {"prompt": "A good answer is", "chosen": " kind, helpful and honest.", "rejected": " rude."},
    {"prompt": "Numbers: 1 2 3", "chosen": " 10 42 100", "rejected": " (x)"},
    {"prompt": "The quick brown fox", "chosen": " jumps over the lazy dog.", "rejected": " sleeps."},
]


def conv(rows):
    return [
        {
            "prompt": [{"role": "user", "content": r["prompt"].strip()}],
            "chosen": [{"role": "assistant", "content": r["chosen"].replace("{eos}", "").strip()}],
            "rejected": [{"role": "assistant", "content": r["rejected"].replace("{eos}", "").strip()}],
        }
        for r in rows
    ]


def arch(name, V):
    common = dict(vocab_size=V, num_hidden_layers=2, num_attention_heads=4)
    if name == "gpt2-bytelevel":
        return AutoConfig.for_model("gpt2", vocab_size=V, n_embd=32, n_layer=2, n_head=4, n_positions=128,
                                    bos_token_id=0, eos_token_id=0)
    if name == "qwen-chat":
        return AutoConfig.for_model("qwen2", hidden_size=32, intermediate_size=48, num_key_value_heads=2,
                                    max_position_embeddings=128, tie_word_embeddings=True, **common)
    return AutoConfig.for_model("llama", hidden_size=32, intermediate_size=48, num_key_value_heads=2,
                                max_position_embeddings=128, **common)


class Recording(DPOTrainer):
    losses = []

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss = out[0] if return_outputs else out
        Recording.losses.append(float(loss.detach()))
        return out


def main():
    torch.manual_seed(0)
    expected = {"transformers": transformers.__version__, "trl": trl.__version__, "torch": torch.__version__,
                "hyperparameters": HP, "runs": {}}
    for name in ["llama-sp", "gpt2-bytelevel", "qwen-chat"]:
        d = os.path.join(OUT, name)
        shutil.rmtree(d, ignore_errors=True)
        mdir = os.path.join(d, "model")
        tok = AutoTokenizer.from_pretrained(os.path.join(TOK, name))
        model = AutoModelForCausalLM.from_config(arch(name, len(tok)), dtype=torch.float32)
        model.save_pretrained(mdir)
        tok.save_pretrained(mdir)
        gen = os.path.join(mdir, "generation_config.json")
        if os.path.exists(gen):
            os.remove(gen)
        sets = {"plain": [{k: v.replace("{eos}", tok.eos_token) for k, v in r.items()} for r in PLAIN]}
        if tok.chat_template:
            sets["conversational"] = conv(PLAIN)
        for kind, rows in sets.items():
            with open(os.path.join(d, f"{kind}.jsonl"), "w") as f:
                for r in rows:
                    f.write(json.dumps(r) + "\n")
            tmp = tempfile.mkdtemp()
            args = DPOConfig(output_dir=tmp, report_to=[], bf16=False, use_cpu=True, gradient_checkpointing=False,
                             logging_steps=1, save_strategy="no", dataloader_num_workers=0,
                             model_init_kwargs={"dtype": torch.float32}, **HP)
            Recording.losses = []
            tr = Recording(model=mdir, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)
            tr.train()
            shutil.rmtree(tmp, ignore_errors=True)
            expected["runs"][f"{name}/{kind}"] = Recording.losses
            print(name, kind, [round(x, 6) for x in Recording.losses])
    json.dump(expected, open(os.path.join(OUT, "expected.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
