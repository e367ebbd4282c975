#!/usr/bin/env python3
"""Runs lm-evaluation-harness (local-completions) against an OpenAI-compatible server.

    python tools/run-lm-eval.py --base-url http://127.0.0.1:PORT/v1/completions \
        --tokenizer DIR --include-path DIR --tasks a,b [--num-fewshot K] [--max-length N] --output FILE

It calls `lm_eval.simple_evaluate` — the function the `lm_eval` CLI calls — and writes its
results JSON (what `lm_eval --output_path` writes), skipping the CLI's table printing, which
needs `pytablewriter` (not on the local Python index). Offline: set HF_DATASETS_OFFLINE=1.
Used by packages/eval/src/lm-eval.test.ts; tools/setup-reference-python.sh makes the venv.
"""
import argparse
import json

import lm_eval
from lm_eval.tasks import TaskManager


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base-url", required=True)
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--include-path", required=True)
    p.add_argument("--tasks", required=True)
    p.add_argument("--num-fewshot", type=int, default=None)
    p.add_argument("--max-length", type=int, default=2048)
    p.add_argument("--output", required=True)
    a = p.parse_args()
    model_args = ",".join(
        [
            "model=alignjs",
            f"base_url={a.base_url}",
            f"tokenizer={a.tokenizer}",
            f"max_length={a.max_length}",
            "num_concurrent=1",
            "max_retries=1",
        ]
    )
    out = lm_eval.simple_evaluate(
        model="local-completions",
        model_args=model_args,
        tasks=a.tasks.split(","),
        num_fewshot=a.num_fewshot,
        task_manager=TaskManager(include_path=a.include_path),
        log_samples=True,
    )
    with open(a.output, "w") as f:
        samples = {
            task: [{"doc_id": x["doc_id"], "resps": x["resps"]} for x in rows]
            for task, rows in (out.get("samples") or {}).items()
        }
        json.dump({"results": out["results"], "n-shot": out.get("n-shot"), "samples": samples}, f, indent=1, default=str)


if __name__ == "__main__":
    main()
