#!/usr/bin/env python3
"""Goldens for @alignjs/loss-dpo made by TRL 1.13's own loss code.

Run in a venv with trl 1.13 from the local Python index:
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch "trl==1.13.*"
    /tmp/venv/bin/python tools/make-trl-loss-goldens.py
Writes packages/loss-dpo/fixtures/trl-goldens.json.

How TRL's code is run on fixed inputs:
- DPO loss types: `DPOTrainer._compute_loss` itself, on a trainer object built without
  `__init__` (only the attributes `_compute_loss` reads), with a stub policy whose forward
  returns fixed logits (an `nn.Parameter`) and a stub reference returning fixed logits.
  `_compute_loss` does everything else: shift, selective log-softmax, masks, `ld_alpha`,
  f-divergence scores, each loss type, `loss_weights`, WPO weights, metrics.
- The inputs we record for our side are what that code computes internally, recomputed
  here the same way in float32: per-sequence sums of completion log-probs (ld-weighted when
  `ld_alpha` is set), completion lengths, and WPO's mean aligned log-probs.
- The gradient w.r.t. each sequence's summed log-prob: the loss depends on the policy logits
  only through the selected log-probs lp_t (WPO's weights and the metrics are computed under
  no_grad), and ∂lp_t/∂z_label = 1 − p_label, so ∂L/∂lp_t = ∂L/∂z_label / (1 − p_label);
  ∂L/∂S_b is that value at the row's first completion token (weight 1 also under ld_alpha).
- ORPO and CPO: `ORPOTrainer.get_batch_loss_metrics` / `CPOTrainer.get_batch_loss_metrics`
  with `concatenated_forward` stubbed to return leaf tensors (sums → means where TRL averages)
  and the NLL TRL's `cross_entropy_loss` computes: the token mean of −log p over every chosen
  completion token of the batch, i.e. −Σ S_chosen / Σ L_chosen.
"""
import json
import math
import os
from collections import defaultdict
from types import SimpleNamespace

import torch
import torch.nn.functional as F
import trl
from trl import DPOTrainer
from trl.experimental.cpo import CPOTrainer
from trl.experimental.orpo import ORPOTrainer

OUT = os.path.join(os.path.dirname(__file__), "..", "packages", "loss-dpo", "fixtures", "trl-goldens.json")
B, T, V = 5, 9, 13


class FixedLogits(torch.nn.Module):
    def __init__(self, logits, trainable):
        super().__init__()
        self.logits = torch.nn.Parameter(logits.clone(), requires_grad=trainable)
        self.training = True
        self.is_gradient_checkpointing = False

    def forward(self, **kwargs):
        return SimpleNamespace(logits=self.logits)


class Accel:
    device = torch.device("cpu")

    def gather_for_metrics(self, x):
        return x

    def gather(self, x):
        return x

    def unwrap_model(self, m):
        return m


def make_batch(seed, scale):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, V, (2 * B, T), generator=g)
    attn = torch.zeros(2 * B, T, dtype=torch.long)
    comp = torch.zeros(2 * B, T, dtype=torch.long)
    for i in range(B):
        p = 1 + int(torch.randint(0, 3, (1,), generator=g))  # prompt length 1..3
        for half in (0, 1):
            r = i + half * B
            c = 1 + int(torch.randint(0, T - p, (1,), generator=g))  # completion 1..T-p
            attn[r, : p + c] = 1
            comp[r, p : p + c] = 1
            ids[r, p + c :] = 0
    policy = torch.randn(2 * B, T, V, generator=g) * scale
    ref = torch.randn(2 * B, T, V, generator=g) * scale
    return ids, attn, comp, policy, ref


def our_inputs(ids, comp, policy, ref, ld_alpha):
    """The per-sequence numbers `_compute_loss` forms internally, float32 as TRL does."""
    labels = ids[:, 1:]
    mask = comp[:, 1:].float()

    def seq(logits):
        lp = torch.gather(logits[:, :-1].log_softmax(-1), 2, labels.unsqueeze(-1)).squeeze(-1) * mask
        if ld_alpha is None:
            return lp.sum(1), lp
        pos = mask.cumsum(1)
        lens = mask.sum(1)
        shared = torch.minimum(*lens.chunk(2)).repeat(2)
        sm = (pos > 0) & (pos <= shared[:, None])
        tm = pos > shared[:, None]
        return (lp * sm).sum(1) + ld_alpha * (lp * tm).sum(1), lp

    with torch.no_grad():
        s_pol, lp = seq(policy)
        s_ref, _ = seq(ref)
        z = policy[:, :-1]
        log_denom = torch.logsumexp(2.0 * z, -1) - 2.0 * torch.logsumexp(z, -1)
        lens = mask.sum(1)
        wpo = ((lp - log_denom) * mask).sum(1) / lens.clamp_min(1)
    return {
        "policyChosenLogps": s_pol[:B].tolist(),
        "policyRejectedLogps": s_pol[B:].tolist(),
        "refChosenLogps": s_ref[:B].tolist(),
        "refRejectedLogps": s_ref[B:].tolist(),
        "chosenLengths": lens[:B].tolist(),
        "rejectedLengths": lens[B:].tolist(),
        "chosenWpoLogps": wpo[:B].tolist(),
        "rejectedWpoLogps": wpo[B:].tolist(),
    }


def dpo_case(batch, cfg):
    ids, attn, comp, policy_logits, ref_logits = batch
    model = FixedLogits(policy_logits, True)
    t = DPOTrainer.__new__(DPOTrainer)
    t.model = model
    t.ref_model = FixedLogits(ref_logits, False)
    t.accelerator = Accel()
    t._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    t.aux_loss_enabled = False
    t.precompute_ref_logps = False
    t.beta = cfg.get("beta", 0.1)
    t.label_smoothing = cfg.get("label_smoothing", 0.0)
    t.loss_types = cfg["loss_type"]
    t.loss_weights = cfg.get("loss_weights") or [1.0] * len(t.loss_types)
    t.ld_alpha = cfg.get("ld_alpha")
    t.f_divergence_type = cfg.get("f_divergence_type", "reverse_kl")
    t.f_alpha_divergence_coef = cfg.get("f_alpha_divergence_coef", 0.5)
    t.use_weighting = cfg.get("use_weighting", False)
    t.args = SimpleNamespace(discopop_tau=cfg.get("discopop_tau", 0.05), gradient_checkpointing_kwargs=None)
    t._total_train_tokens = 0
    t._tp_size = 1
    inputs = {"input_ids": ids, "attention_mask": attn, "completion_mask": comp}
    loss = t._compute_loss(model, inputs, False)
    loss.backward()
    gz = model.logits.grad[:, :-1]
    labels = ids[:, 1:]
    p = policy_logits[:, :-1].softmax(-1)
    g_lab = torch.gather(gz, 2, labels.unsqueeze(-1)).squeeze(-1)
    p_lab = torch.gather(p, 2, labels.unsqueeze(-1)).squeeze(-1)
    dlp = g_lab / (1 - p_lab)
    first = comp[:, 1:].float().argmax(1)  # first completion position in shifted coordinates
    grad = dlp[torch.arange(2 * B), first]
    m = {k: v[0] for k, v in t._metrics["train"].items() if k.startswith("rewards/") or k.startswith("logps/")}
    return {
        "inputs": our_inputs(ids, comp, policy_logits, ref_logits, t.ld_alpha),
        "loss": loss.item(),
        "gradChosen": grad[:B].tolist(),
        "gradRejected": grad[B:].tolist(),
        "metrics": m,
    }


def stub_trainer(cls, cfg, sums, lens):
    t = cls.__new__(cls)
    t.accelerator = Accel()
    t.aux_loss_enabled = False
    t.beta = cfg.get("beta", 0.1)
    t.label_smoothing = cfg.get("label_smoothing", 0.0)
    t.loss_type = cfg.get("loss_type", "sigmoid")
    t.cpo_alpha = cfg.get("cpo_alpha", 1.0)
    t.simpo_gamma = cfg.get("simpo_gamma", 0.5)
    t.alpha = cfg.get("alpha", 0.0)
    mean = cls is ORPOTrainer or t.loss_type in ("ipo", "simpo")

    def concatenated_forward(model, batch):
        logps = sums / lens if mean else sums
        nll = -sums[:B].sum() / lens[:B].sum()
        if cls is CPOTrainer and t.cpo_alpha == 0:
            nll = torch.tensor(0.0)
        z = torch.zeros(B, 1, 1)
        return logps[:B], logps[B:], z, z, nll

    t.concatenated_forward = concatenated_forward
    return t


def ref_free_case(cls, batch, cfg):
    ids, attn, comp, policy_logits, ref_logits = batch
    ours = our_inputs(ids, comp, policy_logits, ref_logits, None)
    sums = torch.tensor(ours["policyChosenLogps"] + ours["policyRejectedLogps"], requires_grad=True)
    lens = torch.tensor(ours["chosenLengths"] + ours["rejectedLengths"])
    t = stub_trainer(cls, cfg, sums, lens)
    loss, metrics = t.get_batch_loss_metrics(None, {}, "train")
    loss.backward()
    keep = ("rewards/", "logps/", "nll_loss", "log_odds")
    return {
        "inputs": ours,
        "loss": loss.item(),
        "gradChosen": sums.grad[:B].tolist(),
        "gradRejected": sums.grad[B:].tolist(),
        "metrics": {k: float(v) for k, v in metrics.items() if k.startswith(keep)},
    }


DPO_CASES = [
    {"loss_type": ["sigmoid"]},
    {"loss_type": ["sigmoid"], "beta": 0.5},
    {"loss_type": ["hinge"], "beta": 0.3},
    {"loss_type": ["ipo"], "beta": 0.7},
    {"loss_type": ["exo_pair"], "label_smoothing": 1e-3},
    {"loss_type": ["exo_pair"], "beta": 0.4, "label_smoothing": 0.2},
    {"loss_type": ["nca_pair"], "beta": 0.4},
    {"loss_type": ["robust"], "beta": 0.2, "label_smoothing": 0.25},
    {"loss_type": ["bco_pair"]},
    {"loss_type": ["bco_pair"], "beta": 0.6},
    {"loss_type": ["sppo_hard"]},
    {"loss_type": ["sppo_hard"], "beta": 0.5},
    {"loss_type": ["aot"]},
    {"loss_type": ["aot"], "beta": 0.5, "label_smoothing": 0.1},
    {"loss_type": ["aot_unpaired"], "beta": 0.5, "label_smoothing": 0.1},
    {"loss_type": ["apo_zero"], "beta": 0.3},
    {"loss_type": ["apo_down"], "beta": 0.3},
    {"loss_type": ["discopop"]},
    {"loss_type": ["discopop"], "beta": 0.5, "discopop_tau": 0.3},
    {"loss_type": ["sft"]},
    {"loss_type": ["sigmoid_norm"]},
    {"loss_type": ["sigmoid_norm"], "beta": 2.0},
    # f-divergences (f-DPO) on the loss types TRL allows them for
    {"loss_type": ["sigmoid"], "f_divergence_type": "forward_kl", "beta": 0.3},
    {"loss_type": ["sigmoid"], "f_divergence_type": "js_divergence", "beta": 0.3},
    {"loss_type": ["sigmoid"], "f_divergence_type": "alpha_divergence", "f_alpha_divergence_coef": 0.5},
    {"loss_type": ["sigmoid"], "f_divergence_type": "alpha_divergence", "f_alpha_divergence_coef": 0.3, "beta": 0.4},
    {"loss_type": ["sigmoid"], "f_divergence_type": "alpha_divergence", "f_alpha_divergence_coef": 1.0},
    {"loss_type": ["hinge"], "f_divergence_type": "js_divergence", "beta": 0.3},
    {"loss_type": ["ipo"], "f_divergence_type": "forward_kl", "beta": 0.5},
    {"loss_type": ["robust"], "f_divergence_type": "alpha_divergence", "label_smoothing": 0.1, "beta": 0.3},
    {"loss_type": ["exo_pair"], "f_divergence_type": "js_divergence", "label_smoothing": 0.1},
    {"loss_type": ["discopop"], "f_divergence_type": "forward_kl", "beta": 0.5},
    {"loss_type": ["sigmoid_norm"], "f_divergence_type": "js_divergence", "beta": 1.0},
    # WPO weighting
    {"loss_type": ["sigmoid"], "use_weighting": True, "beta": 0.5},
    {"loss_type": ["ipo"], "use_weighting": True},
    {"loss_type": ["bco_pair"], "use_weighting": True},
    # LD-DPO
    {"loss_type": ["sigmoid"], "ld_alpha": 0.5, "beta": 0.5},
    {"loss_type": ["sigmoid"], "ld_alpha": 0.0, "beta": 0.5},
    {"loss_type": ["ipo"], "ld_alpha": 0.3},
    # combinations (MPO's recipe and others)
    {"loss_type": ["sigmoid", "bco_pair", "sft"], "loss_weights": [0.8, 0.2, 1.0]},
    {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 0.5], "beta": 0.5},
    {"loss_type": ["robust", "apo_zero"], "loss_weights": [0.3, 0.7], "label_smoothing": 0.1},
]

ORPO_CASES = [{"beta": 0.1}, {"beta": 0.5}]
CPO_CASES = [
    {"loss_type": "sigmoid"},
    {"loss_type": "sigmoid", "beta": 0.5, "label_smoothing": 0.1, "cpo_alpha": 0.5},
    {"loss_type": "hinge", "beta": 0.3},
    {"loss_type": "ipo", "beta": 0.7},
    {"loss_type": "simpo", "beta": 2.0, "simpo_gamma": 0.5, "cpo_alpha": 0.0},
    {"loss_type": "simpo", "beta": 2.5, "simpo_gamma": 1.0, "cpo_alpha": 0.2},
    {"loss_type": "sigmoid", "beta": 0.5, "cpo_alpha": 0.0},
]


def main():
    torch.manual_seed(0)
    batches = {"mild": make_batch(1, 1.0), "wide": make_batch(2, 4.0)}
    cases = []
    for bname, batch in batches.items():
        for cfg in DPO_CASES:
            cases.append({"trainer": "dpo", "batch": bname, "config": cfg, **dpo_case(batch, cfg)})
        for cfg in ORPO_CASES:
            cases.append({"trainer": "orpo", "batch": bname, "config": cfg, **ref_free_case(ORPOTrainer, batch, cfg)})
        for cfg in CPO_CASES:
            cases.append({"trainer": "cpo", "batch": bname, "config": cfg, **ref_free_case(CPOTrainer, batch, cfg)})
    finite = lambda c: all(math.isfinite(x) for x in c["gradChosen"] + c["gradRejected"] + [c["loss"]])
    for c in cases:
        if not finite(c):  # TRL itself overflows here (e.g. discopop's exp on forward-KL scores)
            print(f"left out, TRL's result is not finite: {c['batch']} {c['config']}")
    cases = [c for c in cases if finite(c)]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(
            {
                "made_by": f"tools/make-trl-loss-goldens.py with trl {trl.__version__}, torch {torch.__version__}",
                "cases": cases,
            },
            f,
            indent=0,
        )
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
