#!/usr/bin/env python3
"""Token-id goldens from TRL 1.13's own DPO/KTO preprocessing, for @alignjs/trainer.

Builds three small tokenizers with the `tokenizers` library and saves them with transformers
5.17's `save_pretrained` into packages/trainer/fixtures/trl-tokenization/<name>/:
  - llama-sp:   SentencePiece-style BPE (Metaspace ▁, byte fallback), a post-processor adding <s>
  - gpt2-bytelevel: byte-level BPE, bos = eos = <|endoftext|>, no post-processor tokens (and a
    simple chat template, as GPT-2-derived chat models add)
  - qwen-chat:  byte-level BPE with <|im_start|>/<|im_end|>, no BOS, chat_template.jinja (ChatML)
Then runs trl.DPOTrainer._prepare_dataset and trl.KTOTrainer._prepare_dataset (the functions
DPOTrainer/KTOTrainer call in __init__) on plain and conversational rows, including the edge
rows the issue names, and DataCollatorForPreference's truncation, and writes expected.json.

  .venv-refs/bin/python tools/make-trl-tokenization-goldens.py   (venv: tools/setup-reference-python.sh, plus trl)
"""
import json
import os
import shutil
import tempfile
import types

import transformers
import trl
from datasets import Dataset
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast
from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer
from trl.trainer.dpo_trainer import DataCollatorForPreference

OUT = os.path.join(os.path.dirname(__file__), "..", "packages", "trainer", "fixtures", "trl-tokenization")

CORPUS = [
    "The capital of France is Paris. The capital of Italy is Rome.",
    "Question: what is two plus two? Answer: four.",
    "Write a short poem about the sea and the sky.",
    "The quick brown fox jumps over the lazy dog, and the dog sleeps.",
    "It is sunny today; tomorrow it will rain in the mountains.",
    "Hello there! How are you doing this fine morning?",
    "A good answer is kind, helpful and honest. A bad answer is rude.",
    "Numbers: 1 2 3 10 42 100 2024. Symbols: ( ) [ ] { } , . ; : ! ?",
] * 4

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# GPT-2 itself has no chat template; GPT-2-derived chat models add one like this (EOS = BOS text).
GPT2_CHAT = (
    "{% for message in messages %}{{ message['role'] + ': ' + message['content'] + eos_token }}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'assistant:' }}{% endif %}"
)
LLAMA_CHAT = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% else %}{{ ' ' + message['content'] + eos_token }}{% endif %}{% endfor %}"
)


def llama_sp():
    tk = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tk.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tk.pre_tokenizer = None
    tk.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    specials = ["<unk>", "<s>", "</s>"]
    bytes_ = [f"<0x{i:02X}>" for i in range(256)]
    tr = trainers.BpeTrainer(vocab_size=420, special_tokens=specials + bytes_, show_progress=False)
    tk.train_from_iterator(CORPUS, tr)
    tk.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tk.token_to_id("<s>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token="<s>", eos_token="</s>", unk_token="<unk>", chat_template=LLAMA_CHAT
    )


def byte_level(specials, vocab):
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.post_processor = processors.ByteLevel(trim_offsets=False)
    tr = trainers.BpeTrainer(
        vocab_size=vocab, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tk.train_from_iterator(CORPUS, tr)
    return tk


def gpt2():
    tk = byte_level(["<|endoftext|>"], 360)
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>",
        chat_template=GPT2_CHAT,
    )


def qwen():
    tk = byte_level(["<|endoftext|>", "<|im_start|>", "<|im_end|>"], 360)
    t = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|im_end|>", pad_token="<|endoftext|>", chat_template=CHATML)
    return t


LONG = " ".join(["the quick brown fox jumps over the lazy dog"] * 12)
PLAIN = [
    {"prompt": "The capital of France is", "chosen": " Paris.", "rejected": " Rome."},
    {"prompt": "Question: what is two plus two? Answer:", "chosen": " four.", "rejected": " five."},
    # prompt ending in a space (merges across the boundary when tokenized jointly)
    {"prompt": "Write a short poem about the ", "chosen": "sea and the sky.", "rejected": "dog."},
    # response without a leading space
    {"prompt": "Hello there!", "chosen": "How are you doing?", "rejected": "Go away."},
    # a response that already ends with the EOS text (a second one is not added)
    {"prompt": "It is sunny today;", "chosen": " tomorrow it will rain.{eos}", "rejected": " it is cold.{eos}"},
    {"prompt": "A good answer is", "chosen": " kind, helpful and honest.", "rejected": " rude."},
    {"prompt": "Numbers: 1 2 3", "chosen": " 10 42 100", "rejected": " (x)"},
    # a prompt longer than the small max_length used below (dropped under keep_start)
    {"prompt": LONG, "chosen": " yes.", "rejected": " no."},
]
CONV = [
    {
        "prompt": [{"role": "user", "content": p["prompt"].strip()}],
        "chosen": [{"role": "assistant", "content": p["chosen"].replace("{eos}", "").strip()}],
        "rejected": [{"role": "assistant", "content": p["rejected"].replace("{eos}", "").strip()}],
    }
    for p in PLAIN[:6]
]


def prepared(cls, cfg_cls, tok, rows, **cfg):
    tmp = tempfile.mkdtemp()
    args = cfg_cls(output_dir=tmp, report_to=[], bf16=False, dataset_num_proc=None, **cfg)
    fake = types.SimpleNamespace(
        _tokenizer=tok, _is_vision_dataset=False, calculate_KL=True, desirable_weight=1.0, undesirable_weight=1.0
    )
    ds = cls._prepare_dataset(fake, Dataset.from_list(rows), tok, args, "train")
    shutil.rmtree(tmp, ignore_errors=True)
    return [dict(r) for r in ds]


def main():
    os.makedirs(OUT, exist_ok=True)
    out = {"transformers": transformers.__version__, "trl": trl.__version__, "tokenizers": {}}
    for name, make in [("llama-sp", llama_sp), ("gpt2-bytelevel", gpt2), ("qwen-chat", qwen)]:
        tok = make()
        d = os.path.join(OUT, name)
        shutil.rmtree(d, ignore_errors=True)
        tok.save_pretrained(d)
        tok = transformers.AutoTokenizer.from_pretrained(d)  # as a user loads it
        eos = tok.eos_token
        plain = [{k: v.replace("{eos}", eos) for k, v in r.items()} for r in PLAIN]
        case = {"plain": plain, **({"conversational": CONV} if tok.chat_template else {})}
        res = {}
        for kind, rows in case.items():
            # TRL 1.13 defaults (max_length 1024, keep_start) and a small limit that binds.
            for label, cfg in [("default", {}), ("max24", {"max_length": 24})]:
                ex = prepared(DPOTrainer, DPOConfig, tok, rows, **cfg)
                coll = DataCollatorForPreference(
                    pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
                    max_length=cfg.get("max_length", 1024),
                    truncation_mode="keep_start",
                )
                b = coll([{k: e[k] for k in ("prompt_ids", "chosen_ids", "rejected_ids")} for e in ex])
                n = len(ex)
                seqs = []
                for i in range(2 * n):
                    m = b["attention_mask"][i].tolist()
                    L = sum(m)
                    seqs.append({"ids": b["input_ids"][i].tolist()[:L], "completionMask": b["completion_mask"][i].tolist()[:L]})
                # which source rows survived the filter (TRL drops prompts that fill max_length)
                kept = [i for i, r in enumerate(rows) if any(e["prompt"] == r["prompt"] for e in ex)]
                res[f"{kind}/{label}"] = {
                    "kept": kept,
                    "examples": [{k: e[k] for k in ("prompt_ids", "chosen_ids", "rejected_ids")} for e in ex],
                    "chosen": seqs[:n],
                    "rejected": seqs[n:],
                }
            # KTO: the unpaired rows and their KL pairs
            unpaired = [
                {"prompt": r["prompt"], "completion": r["chosen"] if i % 2 == 0 else r["rejected"], "label": i % 2 == 0}
                for i, r in enumerate(rows)
            ]
            kto = prepared(KTOTrainer, KTOConfig, tok, unpaired)
            res[f"{kind}/kto"] = {
                "rows": unpaired,
                "examples": [
                    {k: e[k] for k in ("prompt_ids", "completion_ids", "KL_completion_ids") if k in e} for e in kto
                ],
            }
        out["tokenizers"][name] = {"rows": case, "results": res}
        print(name, len(tok), "tokens")
    json.dump(out, open(os.path.join(OUT, "expected.json"), "w"), indent=None, separators=(",", ":"))


if __name__ == "__main__":
    main()
