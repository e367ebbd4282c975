#!/usr/bin/python3
"""PyTorch-CPU side of bench/train-step.ts: the same architecture (a Hugging Face config.json,
GPT-2 or Llama family), batch and DPO step (forward + backward + AdamW) on random weights,
timed with threads = cores (or the job's "threads"). The forwards are tools/torch_reference.py, the code the models
package's golden fixtures come from. Prints one JSON line.
Run by the bench with /usr/bin/python3 (Debian's python3-torch); installs nothing."""
import json, os, sys, time
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
from torch_reference import gpt2_forward, gpt2_weights, llama_forward, llama_weights  # noqa: E402

job = json.loads(sys.argv[1])
cfg, B, T, repeats = job["config"], job["pairs"], job["seq"], job["repeats"]
torch.manual_seed(0)
torch.set_num_threads(job.get("threads") or os.cpu_count() or 1)
if cfg["model_type"] == "gpt2":
    cfg = {"layer_norm_epsilon": 1e-5, **cfg}
    forward, w = gpt2_forward, gpt2_weights(cfg)
else:
    forward, w = llama_forward, llama_weights(cfg, cfg["model_type"] == "qwen2")
params = [t.requires_grad_() for t in w.values()]
opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.0)
ids = torch.randint(1, cfg["vocab_size"], (2 * B, T))
mask = torch.ones_like(ids)
pos = torch.arange(T)[None].expand(2 * B, T)
ref = torch.randn(2 * B)


def step():
    logits = forward(cfg, w, ids, mask, pos)
    lp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, ids[:, 1:, None]).squeeze(-1).sum(-1)
    rho = lp - ref
    loss = -torch.nn.functional.logsigmoid(0.1 * (rho[:B] - rho[B:])).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


step()
times = []
for _ in range(repeats):
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
times.sort()


def matmul_gflops(n, reps=5):
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return reps * 2 * n**3 / (time.perf_counter() - t0) / 1e9


# The ceiling: the best of the same square sizes the wasm side measures.
ceiling = max(matmul_gflops(n) for n in job["ceilingSizes"])
print(json.dumps({
    "step_s": times[len(times) // 2],
    "matmul_gflops": ceiling,
    "threads": torch.get_num_threads(),
    "torch": torch.__version__,
    "params": sum(t.numel() for t in params),
}))
