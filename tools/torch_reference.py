"""The PyTorch reference forwards shared by tools/make-model-fixtures.py (golden fixtures) and
bench/torch_step.py (the PyTorch side of the training-step bench): transformers' modeling
code reduced to its math, on a dict of weights in Hugging Face state_dict naming.

GPT-2: modeling_gpt2.py with Conv1D weights [in, out], gelu_new, tied lm_head. Llama:
modeling_llama.py with RMSNorm in float32, rotate_half RoPE, repeat_kv for grouped-query
attention, SwiGLU; Qwen2 is Llama with q/k/v bias. No transformers install is needed.
"""
import math

import torch


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
