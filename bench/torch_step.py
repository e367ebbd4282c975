#!/usr/bin/python3
"""PyTorch-CPU side of bench/train-step.ts: the same GPT-2-shaped model, batch and DPO step
(forward + backward + AdamW) on random weights, timed with threads = cores. Prints JSON.
Run by the bench with /usr/bin/python3 (Debian's python3-torch); installs nothing."""
import json, math, os, sys, time
import torch

cfg = json.loads(sys.argv[1])
torch.manual_seed(0)
torch.set_num_threads(os.cpu_count() or 1)
V, E, L, H, P = cfg["vocab"], cfg["embd"], cfg["layers"], cfg["heads"], cfg["positions"]
B, T, repeats = cfg["pairs"], cfg["seq"], cfg["repeats"]

class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = torch.nn.LayerNorm(E); self.ln_2 = torch.nn.LayerNorm(E)
        self.c_attn = torch.nn.Linear(E, 3 * E); self.c_proj = torch.nn.Linear(E, E)
        self.c_fc = torch.nn.Linear(E, 4 * E); self.mlp_proj = torch.nn.Linear(4 * E, E)
    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(E, dim=2)
        sh = lambda z: z.view(b, t, H, E // H).transpose(1, 2)
        o = torch.nn.functional.scaled_dot_product_attention(sh(q), sh(k), sh(v), is_causal=True) if hasattr(torch.nn.functional, "scaled_dot_product_attention") else None
        if o is None:
            a = (sh(q) @ sh(k).transpose(-1, -2)) / math.sqrt(E // H)
            a = a.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1), float("-inf")).softmax(-1)
            o = a @ sh(v)
        x = x + self.c_proj(o.transpose(1, 2).reshape(b, t, E))
        h = self.c_fc(self.ln_2(x))
        return x + self.mlp_proj(0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3))))

class GPT2(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = torch.nn.Embedding(V, E); self.wpe = torch.nn.Embedding(P, E)
        self.h = torch.nn.ModuleList([Block() for _ in range(L)]); self.ln_f = torch.nn.LayerNorm(E)
    def forward(self, ids):
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
        for blk in self.h: x = blk(x)
        return self.ln_f(x) @ self.wte.weight.T

model = GPT2()
opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
ids = torch.randint(1, V, (2 * B, T))
ref = torch.randn(2 * B)

def step():
    logits = model(ids)
    lp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, ids[:, 1:, None]).squeeze(-1).sum(-1)
    rho = lp - ref
    loss = -torch.nn.functional.logsigmoid(0.1 * (rho[:B] - rho[B:])).mean()
    opt.zero_grad(); loss.backward(); opt.step()

step()
times = []
for _ in range(repeats):
    t0 = time.perf_counter(); step(); times.append(time.perf_counter() - t0)
times.sort()
a = torch.randn(1024, 1024); b = torch.randn(1024, 1024)
a @ b
t0 = time.perf_counter()
for _ in range(10): a @ b
mm = 10 * 2 * 1024 ** 3 / (time.perf_counter() - t0) / 1e9
print(json.dumps({"step_s": times[len(times) // 2], "matmul_gflops": mm, "threads": torch.get_num_threads(), "torch": torch.__version__}))
