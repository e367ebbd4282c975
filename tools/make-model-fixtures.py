#!/usr/bin/python3
"""Golden fixtures for @alignjs/models, made by a faithful PyTorch reference.

Run with Debian's python3-torch under the system python: /usr/bin/python3 tools/make-model-fixtures.py
(apt-get install python3-torch). Writes packages/models/fixtures/<arch>/: config.json, the
weights in Hugging Face state_dict naming (model.safetensors, or shards + index), and
expected.json with inputs, logits, per-token log-probs and greedy ids.

The three architectures follow transformers' modeling code (GPT-2: modeling_gpt2.py with
Conv1D weights [in, out], gelu_new, tied lm_head; Llama: modeling_llama.py with RMSNorm in
float32, rotate_half RoPE, repeat_kv for grouped-query attention, SwiGLU; Qwen2: Llama with
q/k/v bias). No transformers install is needed: tools/torch_reference.py is those files' math.
"""
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from torch_reference import gpt2_forward, gpt2_weights, llama_forward, llama_weights, positions  # noqa: E402

torch.manual_seed(0)
OUT = os.path.join(os.path.dirname(__file__), "..", "packages", "models", "fixtures")

DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def write_safetensors(path, tensors, dtype):
    """Minimal safetensors writer: 8-byte little-endian header size, JSON header, raw data."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(dtype).contiguous()
        raw = _bytes(t)
        header[name] = {"dtype": DTYPES[dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def _bytes(t):
    # bfloat16 has no numpy dtype: reinterpret its bits as int16.
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def rounded(state, dtype):
    """The weights as the loader will see them: stored in `dtype`, read back as float32."""
    return {k: v.to(dtype).to(torch.float32) for k, v in state.items()}


def greedy(forward, cfg, w, prompt, steps):
    ids = torch.tensor([prompt])
    for _ in range(steps):
        mask = torch.ones_like(ids)
        logits = forward(cfg, w, ids, mask, positions(mask))
        ids = torch.cat([ids, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return ids[0, len(prompt) :].tolist()


def make(name, cfg, forward, weights, dtype, shards=1):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    w = rounded(weights, dtype)
    V = cfg["vocab_size"]
    # Batch of 3: no padding, right padding, left padding.
    ids = torch.randint(0, V, (3, 7))
    mask = torch.tensor([[1] * 7, [1] * 5 + [0] * 2, [0] * 3 + [1] * 4])
    ids = ids * mask  # pad id 0
    with torch.no_grad():
        logits = forward(cfg, w, ids, mask, positions(mask))
        lsm = torch.log_softmax(logits.double(), dim=-1)
        tok = torch.zeros(3, 7, dtype=torch.float64)
        for b in range(3):
            for t in range(1, 7):
                if mask[b, t] and mask[b, t - 1]:
                    tok[b, t] = lsm[b, t - 1, ids[b, t]]
        prompts = [[int(x) for x in torch.randint(1, V, (n,))] for n in (3, 5)]
        gen = [greedy(forward, cfg, w, p, 6) for p in prompts]
    names = sorted(weights)
    if shards == 1:
        write_safetensors(os.path.join(d, "model.safetensors"), weights, dtype)
    else:
        half = len(names) // 2
        parts = [names[:half], names[half:]]
        weight_map, total = {}, 0
        for s, part in enumerate(parts):
            fname = f"model-{s + 1:05d}-of-{len(parts):05d}.safetensors"
            write_safetensors(os.path.join(d, fname), {k: weights[k] for k in part}, dtype)
            for k in part:
                weight_map[k] = fname
                total += weights[k].numel() * torch.tensor([], dtype=dtype).element_size()
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    expected = {
        "note": f"made by tools/make-model-fixtures.py with torch {torch.__version__}; weights stored as {DTYPES[dtype]}",
        "inputIds": ids.tolist(),
        "attentionMask": mask.tolist(),
        "logits": [[[round(float(x), 7) for x in row] for row in seq] for seq in logits],
        "tokenLogps": tok.tolist(),
        "greedy": [{"prompt": p, "ids": g} for p, g in zip(prompts, gen)],
        "parameterNames": names,
    }
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(expected, f)
    print(name, "ok", sum(v.numel() for v in weights.values()), "parameters")


gpt2 = {
    "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 61, "n_positions": 32,
    "n_embd": 32, "n_layer": 2, "n_head": 4, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new",
    "tie_word_embeddings": True, "bos_token_id": 1, "eos_token_id": 2,
}
make("gpt2", gpt2, gpt2_forward, gpt2_weights(gpt2), torch.float32)

llama = {
    "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 67, "hidden_size": 32,
    "intermediate_size": 56, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "max_position_embeddings": 64, "hidden_act": "silu",
    "tie_word_embeddings": False, "attention_bias": False, "bos_token_id": 1, "eos_token_id": 2,
}
make("llama", llama, llama_forward, llama_weights(llama, False), torch.float16)

qwen2 = {
    "model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "vocab_size": 59, "hidden_size": 48,
    "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 6, "num_key_value_heads": 2,
    "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "max_position_embeddings": 64, "hidden_act": "silu",
    "tie_word_embeddings": True, "use_sliding_window": False, "sliding_window": None,
    "bos_token_id": 1, "eos_token_id": 2,
}
make("qwen2", qwen2, llama_forward, llama_weights(qwen2, True), torch.bfloat16, shards=2)
