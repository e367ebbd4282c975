#!/usr/bin/env python3
"""TRL 1.13's DPOTrainer step, timed the way bench/shipped-step.ts times ours.

Same architecture (random weights, or the built-in tiny model's own), the same batch
(`pairs` pairs, prompt 8 tokens + response to `seq` tokens per row), AdamW, lr 1e-5, one
optimizer step per batch; the median over `steps` steps after one warm-up, timed between
TrainerCallback.on_step_begin and on_step_end. Already-tokenized rows go straight to the
collator (the tokenization is not timed on either side). Prints one JSON line:
{"seconds", "min", "max", "tokens_per_s", "peak_rss_mb", "torch", "trl", "threads", "bf16"}.

  .venv-refs/bin/python bench/trl_step.py --shape gpt2-mini --pairs 2 --seq 64 --steps 6 --threads 1 [--bf16]
"""
import argparse
import json
import os
import resource
import statistics
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("--shape", choices=["tiny", "gpt2-mini", "gpt2-small", "qwen-0.5b"], required=True)
ap.add_argument("--pairs", type=int, required=True)
ap.add_argument("--seq", type=int, required=True)
ap.add_argument("--steps", type=int, default=6)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--bf16", action="store_true")
ap.add_argument("--lora", action="store_true", help="PEFT LoRA r=8, alpha=16 on q_proj, v_proj")
ap.add_argument("--tiny-dir", default=os.path.join(os.path.dirname(__file__), "..", "packages", "models", "tiny"))
a = ap.parse_args()

import torch  # noqa: E402

torch.set_num_threads(a.threads)
import trl  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoModelForCausalLM, GPT2Config, TrainerCallback  # noqa: E402
from trl import DPOConfig, DPOTrainer  # noqa: E402

torch.manual_seed(0)
if a.shape == "tiny":
    model = AutoModelForCausalLM.from_pretrained(a.tiny_dir, dtype=torch.float32)
elif a.shape == "qwen-0.5b":
    from transformers import Qwen2Config  # noqa: E402

    # Qwen2.5-0.5B's config.json (494M parameters, tied embeddings)
    cfg = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                      num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                      rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
elif a.shape == "gpt2-small":
    cfg = GPT2Config()  # 124M: vocab 50257, 12 layers of 768
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
else:
    cfg = GPT2Config(vocab_size=8192, n_positions=1024, n_embd=256, n_layer=4, n_head=4)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
V = model.config.vocab_size
g = torch.Generator().manual_seed(1)
P = 8
rows = [
    {
        "prompt_ids": torch.randint(0, V, (P,), generator=g).tolist(),
        "chosen_ids": torch.randint(0, V, (a.seq - P,), generator=g).tolist(),
        "rejected_ids": torch.randint(0, V, (a.seq - P,), generator=g).tolist(),
    }
    for _ in range(a.pairs)
]


class Pretokenized(DPOTrainer):
    def _prepare_dataset(self, dataset, *args, **kwargs):
        return dataset


class Timer(TrainerCallback):
    def __init__(self):
        self.t0 = 0.0
        self.times = []

    def on_step_begin(self, args, state, control, **kw):
        self.t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        self.times.append(time.perf_counter() - self.t0)


timer = Timer()
out = tempfile.mkdtemp()
args = DPOConfig(
    output_dir=out, report_to=[], use_cpu=True, bf16=a.bf16, gradient_checkpointing=False,
    per_device_train_batch_size=a.pairs, max_steps=1 + a.steps, learning_rate=1e-5,
    logging_steps=10_000, save_strategy="no", dataloader_num_workers=0, max_length=a.seq,
    disable_tqdm=True,
)
from transformers import PreTrainedTokenizerFast  # noqa: E402
from tokenizers import Tokenizer, models  # noqa: E402

tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"<pad>": 0}, unk_token="<pad>")),
                              pad_token="<pad>", eos_token="<pad>")
import copy  # noqa: E402

# the reference: a frozen copy of the starting model (TRL would reload it from the model's
# path); with LoRA, TRL's own choice: the base model with the adapter disabled
peft_config = None
if a.lora:
    from peft import LoraConfig  # noqa: E402

    peft_config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
ref = None if a.lora else copy.deepcopy(model).eval()
tr = Pretokenized(model=model, ref_model=ref, peft_config=peft_config, args=args, train_dataset=Dataset.from_list(rows * (1 + a.steps)),
                  processing_class=tok, callbacks=[timer])
tr.train()
sec = statistics.median(timer.times[1:])


def peak_rss_mb():
    """VmHWM (starts afresh at exec; ru_maxrss keeps the spawning process's peak)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

print(json.dumps({
    "seconds": sec, "min": min(timer.times[1:]), "max": max(timer.times[1:]),
    "tokens_per_s": 2 * a.pairs * a.seq / sec,
    "peak_rss_mb": peak_rss_mb(),
    "torch": torch.__version__, "trl": trl.__version__, "threads": a.threads, "bf16": a.bf16,
}))
