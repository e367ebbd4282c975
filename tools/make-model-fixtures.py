#!/usr/bin/python3
"""Golden fixtures for @alignjs/models, made by a faithful PyTorch reference.

Run with Debian's python3-torch under the system python: /usr/bin/python3 tools/make-model-fixtures.py
(apt-get install python3-torch). Writes packages/models/fixtures/<arch>/: config.json, the
weights in Hugging Face state_dict naming (model.safetensors, or shards + index), and
expected.json with inputs, logits, per-token log-probs and greedy ids.

The three architectures follow transformers' modeling code (GPT-2: modeling_gpt2.py with
Conv1D weights [in, out], gelu_new, tied lm_head; Llama: modeling_llama.py with RMSNorm in
float32, rotate_half RoPE, repeat_kv for grouped-query attention, SwiGLU; Qwen2: Llama with
q/k/v bias). No transformers install is needed: the code below is those files' math.
"""
import json
import math
import os
import struct

import torch

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


# ---------------------------------------------------------------- GPT-2 (modeling_gpt2.py)
def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def gpt2_forward(cfg, w, ids, mask, pos):
    B, T = ids.shape
    E, H = cfg["n_embd"], cfg["n_head"]
    hd = E // H
    eps = cfg["layer_norm_epsilon"]
    h = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][pos]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    neg = torch.finfo(torch.float32).min
    ext = (1.0 - mask[:, None, None, :].float()) * neg
    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        x = torch.nn.functional.layer_norm(h, (E,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        qkv = x @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(E, dim=2)
        split = lambda t: t.view(B, T, H, hd).permute(0, 2, 1, 3)
        q, k, v = split(q), split(k), split(v)
        a = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        a = torch.where(causal, a, torch.tensor(neg))
        a = a + ext
        a = torch.softmax(a, dim=-1)
        o = (a @ v).permute(0, 2, 1, 3).reshape(B, T, E)
        o = o @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        h = h + o
        x = torch.nn.functional.layer_norm(h, (E,), w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        m = gelu_new(x @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
        h = h + (m @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"])
    h = torch.nn.functional.layer_norm(h, (E,), w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], eps)
    return h @ w["transformer.wte.weight"].T


def gpt2_weights(cfg):
    E, L, V, P = cfg["n_embd"], cfg["n_layer"], cfg["vocab_size"], cfg["n_positions"]
    r = lambda *s: torch.randn(*s) * 0.2
    w = {"transformer.wte.weight": r(V, E), "transformer.wpe.weight": r(P, E)}
    for i in range(L):
        p = f"transformer.h.{i}."
        w[p + "ln_1.weight"] = 1 + r(E)
        w[p + "ln_1.bias"] = r(E)
        w[p + "attn.c_attn.weight"] = r(E, 3 * E)  # Conv1D: [in, out]
        w[p + "attn.c_attn.bias"] = r(3 * E)
        w[p + "attn.c_proj.weight"] = r(E, E)
        w[p + "attn.c_proj.bias"] = r(E)
        w[p + "ln_2.weight"] = 1 + r(E)
        w[p + "ln_2.bias"] = r(E)
        w[p + "mlp.c_fc.weight"] = r(E, 4 * E)
        w[p + "mlp.c_fc.bias"] = r(4 * E)
        w[p + "mlp.c_proj.weight"] = r(4 * E, E)
        w[p + "mlp.c_proj.bias"] = r(E)
    w["transformer.ln_f.weight"] = 1 + r(E)
    w["transformer.ln_f.bias"] = r(E)
    return w


# ------------------------------------------------------ Llama / Qwen2 (modeling_llama.py)
def rms_norm(x, weight, eps):
    x32 = x.to(torch.float32)
    var = x32.pow(2).mean(-1, keepdim=True)
    return weight * (x32 * torch.rsqrt(var + eps))


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def llama_forward(cfg, w, ids, mask, pos):
    B, T = ids.shape
    E = cfg["hidden_size"]
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = E // H
    eps = cfg["rms_norm_eps"]
    inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    freqs = pos[:, :, None].float() * inv_freq[None, None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]
    neg = torch.finfo(torch.float32).min
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    bias = torch.where(causal[None, None] & mask[:, None, None, :].bool(), 0.0, neg)
    h = w["model.embed_tokens.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        x = rms_norm(h, w[p + "input_layernorm.weight"], eps)
        lin = lambda name, t: t @ w[p + name + ".weight"].T + (w[p + name + ".bias"] if (p + name + ".bias") in w else 0)
        q = lin("self_attn.q_proj", x).view(B, T, H, hd).transpose(1, 2)
        k = lin("self_attn.k_proj", x).view(B, T, KV, hd).transpose(1, 2)
        v = lin("self_attn.v_proj", x).view(B, T, KV, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = H // KV
        k = k[:, :, None].expand(B, KV, rep, T, hd).reshape(B, H, T, hd)
        v = v[:, :, None].expand(B, KV, rep, T, hd).reshape(B, H, T, hd)
        a = torch.softmax((q @ k.transpose(2, 3)) / math.sqrt(hd) + bias, dim=-1, dtype=torch.float32)
        o = (a @ v).transpose(1, 2).reshape(B, T, E)
        h = h + o @ w[p + "self_attn.o_proj.weight"].T
        x = rms_norm(h, w[p + "post_attention_layernorm.weight"], eps)
        g = x @ w[p + "mlp.gate_proj.weight"].T
        u = x @ w[p + "mlp.up_proj.weight"].T
        h = h + (torch.nn.functional.silu(g) * u) @ w[p + "mlp.down_proj.weight"].T
    h = rms_norm(h, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else w["lm_head.weight"]
    return h @ head.T


def llama_weights(cfg, qkv_bias):
    E, L, V, I = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"], cfg["intermediate_size"]
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = E // H
    r = lambda *s: torch.randn(*s) * 0.2
    w = {"model.embed_tokens.weight": r(V, E)}
    for i in range(L):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = 1 + r(E)
        w[p + "self_attn.q_proj.weight"] = r(H * hd, E)  # nn.Linear: [out, in]
        w[p + "self_attn.k_proj.weight"] = r(KV * hd, E)
        w[p + "self_attn.v_proj.weight"] = r(KV * hd, E)
        if qkv_bias:
            w[p + "self_attn.q_proj.bias"] = r(H * hd)
            w[p + "self_attn.k_proj.bias"] = r(KV * hd)
            w[p + "self_attn.v_proj.bias"] = r(KV * hd)
        w[p + "self_attn.o_proj.weight"] = r(E, H * hd)
        w[p + "post_attention_layernorm.weight"] = 1 + r(E)
        w[p + "mlp.gate_proj.weight"] = r(I, E)
        w[p + "mlp.up_proj.weight"] = r(I, E)
        w[p + "mlp.down_proj.weight"] = r(E, I)
    w["model.norm.weight"] = 1 + r(E)
    if not cfg.get("tie_word_embeddings"):
        w["lm_head.weight"] = r(V, E)
    return w


# ------------------------------------------------------------------------------- shared
def positions(mask):
    # As transformers' generate(): cumsum of the mask − 1, pad positions set to 1.
    pos = mask.long().cumsum(-1) - 1
    return pos.masked_fill(mask == 0, 1)


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
