"""The quickstart's report folder: metrics.json, loss curves (PNG), index.html, commands.sh."""

from __future__ import annotations

import dataclasses
import html
import json
import os
import platform
from typing import Any

from .options import TARGETS, TASK_NAMES


def task_metrics() -> dict[str, tuple[str, ...]]:
    """{task name: the metrics its summary shows, headline first}, from the task registry."""
    from ..tasks.task import all_tasks

    return {name: task.report_metrics for name, task in all_tasks().items()}


def write_report(report_dir: str, metrics: dict, paths: dict) -> None:
    os.makedirs(report_dir, exist_ok=True)
    with open(os.path.join(report_dir, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2, ensure_ascii=False)
        f.write("\n")
    images = []
    if plot_pretraining(paths, metrics, os.path.join(report_dir, "pretrain_curves.png")):
        images.append(("pretrain_curves.png", "Pretraining: loss and MLM / NSP accuracy on training batches"))
    if plot_finetuning(paths, metrics, os.path.join(report_dir, "finetune_curves.png")):
        images.append(("finetune_curves.png", "Fine-tuning: training loss and the dev metric after each epoch"))
    write_commands(os.path.join(report_dir, "commands.sh"), metrics)
    with open(os.path.join(report_dir, "index.html"), "w", encoding="utf-8") as f:
        f.write(render_html(metrics, images))


def _history(model_dir: str) -> list[dict]:
    path = os.path.join(model_dir, "history.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pretraining(paths: dict, metrics: dict, file: str) -> bool:
    rows = [r for r in _history(paths["pretrain"]) if "loss" in r]
    if not rows:
        return False
    plt = _pyplot()
    steps = [r["step"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for key in ("loss", "mlm_loss", "nsp_loss"):
        left.plot(steps, [r[key] for r in rows], label=key)
    left.set(xlabel="step", title="pretraining loss")
    left.legend()
    for key in ("mlm_accuracy", "nsp_accuracy"):
        right.plot(steps, [r[key] for r in rows], label=f"{key} (train)")
    pre = metrics.get("results", {}).get("pretrain", {})
    if "unigram_accuracy" in pre:
        right.axhline(pre["unigram_accuracy"], color="gray", linestyle="--", label="unigram baseline")
        right.axhline(pre["mlm_accuracy"], color="tab:blue", linestyle=":", label="MLM accuracy (held-out)")
    right.set(xlabel="step", title="accuracy", ylim=(0, 1))
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(file, dpi=90)
    plt.close(fig)
    return True


def plot_finetuning(paths: dict, metrics: dict, file: str) -> bool:
    shown = task_metrics()
    tasks = [t for t in shown if t in metrics.get("results", {})]
    if not tasks:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        history = _history(paths[task])
        train = [r for r in history if "loss" in r]
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], color="tab:red", label="train loss")
        ax.set(xlabel="step", ylabel="loss", title=task)
        key = shown[task][0]
        dev = [r for r in history if f"eval_{key}" in r]
        if dev:
            twin = ax.twinx()
            values = [r[f"eval_{key}"] for r in dev]
            scale = 100.0 if task == "qa" else 1.0
            twin.plot([r["step"] for r in dev], [v / scale for v in values], "o-", color="tab:blue",
                      label=f"dev {key}")
            twin.set(ylim=(0, 1.02), ylabel=f"dev {key}" + (" / 100" if scale != 1 else ""))
            twin.legend(loc="center right", fontsize=8)
        ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(file, dpi=90)
    plt.close(fig)
    return True


def write_commands(file: str, metrics: dict) -> None:
    lines = ["#!/bin/sh", "# The quickstart, step by step: each command is what `bertkit quickstart` ran in-process.",
             "set -e", ""]
    for step in metrics["steps"]:
        if not step["commands"]:
            continue
        lines.append(f"# {step['name']}: {step['result'].splitlines()[0]}")
        lines += step["commands"]
        lines.append("")
    with open(file, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    os.chmod(file, 0o755)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def results_rows(metrics: dict) -> list[tuple[str, str, str, str]]:
    """(what, value, target, verdict) rows of the results table."""
    results, targets = metrics.get("results", {}), metrics.get("targets", {})
    rows = []
    pre = results.get("pretrain")
    if pre:
        where = "held-out" if pre.get("heldout") else "training data"
        above = pre["mlm_accuracy"] > pre["unigram_accuracy"]
        rows.append((f"MLM accuracy ({where})", _fmt(pre["mlm_accuracy"]),
                     f"&gt; unigram baseline {_fmt(pre['unigram_accuracy'])}", "ok" if above else "below"))
        rows.append((f"NSP accuracy ({where})", _fmt(pre["nsp_accuracy"]), "&gt; 0.5 (chance)",
                     "ok" if pre["nsp_accuracy"] > 0.5 else "below"))
    for task, keys in task_metrics().items():
        dev = results.get(task)
        if not dev:
            continue
        target = targets.get(task)
        for key in keys:
            if key not in dev:
                continue
            if target and target["metric"] == key:
                rows.append((f"{task} dev {key}", _fmt(dev[key]), f"&gt; {target['above']:g}",
                             "ok" if dev[key] > target["above"] else "below"))
            else:
                rows.append((f"{task} dev {key}", _fmt(dev[key]), "", ""))
    return rows


def render_html(metrics: dict, images: list[tuple[str, str]]) -> str:
    esc = html.escape
    steps = "".join(
        f"<tr><td>{esc(s['name'])}</td><td class=num>{s['seconds']:.1f}</td><td class=num>{s['cpu_seconds']:.1f}</td>"
        f"<td><pre>{esc(s['result'])}</pre></td></tr>" for s in metrics["steps"])
    results = "".join(f"<tr><td>{a}</td><td class=num>{b}</td><td>{c}</td><td class={d or 'none'}>{d}</td></tr>"
                      for a, b, c, d in results_rows(metrics))
    requests = "".join(
        f"<tr><td>{esc(r['task'])}</td><td><code>{esc(json.dumps(r['inputs'], ensure_ascii=False))}</code></td>"
        f"<td><code>{esc(json.dumps(r['answer'], ensure_ascii=False))}</code></td>"
        f"<td><code>{esc(json.dumps(r['expected'], ensure_ascii=False))}</code></td></tr>"
        for r in metrics.get("results", {}).get("requests", []))
    figures = "".join(f"<figure><img src='{esc(src)}' alt='{esc(cap)}'><figcaption>{esc(cap)}</figcaption></figure>"
                      for src, cap in images)
    commands = "\n\n".join(f"# {s['name']}\n" + "\n".join(s["commands"]) for s in metrics["steps"] if s["commands"])
    env = metrics.get("environment", {})
    source = "the synthetic world" if metrics.get("synthetic") else "your data"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bertkit quickstart report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border: 1px solid #ccc; padding: .3em .6em; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }} td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
td.ok {{ color: #0a0; font-weight: bold; }} td.below {{ color: #c00; font-weight: bold; }}
pre {{ margin: 0; white-space: pre-wrap; }} img {{ max-width: 100%; }} figure {{ margin: 1em 0; }}
code {{ font-size: 85%; word-break: break-word; }}
</style></head><body>
<h1>bertkit quickstart</h1>
<p>The whole BERT pipeline on {source}, offline: vocab &rarr; pretrain (MLM + NSP) &rarr; fine-tune
each task ({esc(", ".join(t for t in TASK_NAMES if t in metrics.get("results", {})))}) &rarr; export
&rarr; requests to the exported SavedModels.
Total time: <b>{metrics['total_seconds'] / 60:.1f} min</b> ({metrics['total_seconds']:.0f} s) on
{env.get('cpus', '?')} CPU(s){', ' + str(env['gpus']) + ' GPU(s)' if env.get('gpus') else ''};
bertkit {esc(str(env.get('bertkit', '?')))}, TensorFlow {esc(str(env.get('tensorflow', '?')))}.</p>
<h2>Results</h2>
<table><tr><th>metric</th><th>value</th><th>target</th><th></th></tr>{results}</table>
<h2>Curves</h2>{figures}
<h2>Requests to the exported SavedModels</h2>
<table><tr><th>task</th><th>request</th><th>answer</th><th>expected</th></tr>{requests}</table>
<h2>Steps</h2>
<table><tr><th>step</th><th>wall s</th><th>CPU s</th><th>result</th></tr>{steps}</table>
<h2>Reproduce each step</h2>
<p>The same commands are in <a href="commands.sh">commands.sh</a>; all metrics in <a href="metrics.json">metrics.json</a>.</p>
<pre>{esc(commands)}</pre>
</body></html>
"""


# --- metrics.json: the run's summary ---------------------------------------------------------------

# --- report --------------------------------------------------------------------------------------------

def target_lines(metrics: dict) -> list[str]:
    lines = []
    for task, (key, bar) in TARGETS.items():
        value = metrics.get("results", {}).get(task, {}).get(key)
        if value is not None and metrics.get("synthetic"):
            lines.append(f"  {task} dev {key} {value:.4g} (target > {bar:g}): {'ok' if value > bar else 'BELOW TARGET'}")
    pre = metrics.get("results", {}).get("pretrain")
    if pre:
        lines.append(f"  MLM accuracy {pre['mlm_accuracy']:.3f} vs unigram baseline {pre['unigram_accuracy']:.3f}")
    return lines


def write_run_report(results: list, options, paths: dict, total: float) -> dict:
    by_name = {r.name: r for r in results}
    summary: dict[str, Any] = {}
    if "pretrain_eval" in by_name:
        summary["pretrain"] = {**by_name["pretrain_eval"].metrics, **{
            k: v for k, v in by_name["pretrain"].metrics.items() if k.startswith("train_") or k == "seq_per_s"}}
    for task in TASK_NAMES:
        if task in by_name:
            summary[task] = by_name[task].metrics.get("dev", {})
    if "requests" in by_name:
        summary["requests"] = by_name["requests"].metrics.get("requests", [])
    metrics = {
        "synthetic": options.synthetic,
        "total_seconds": round(total, 2),
        "steps": [{"name": r.name, "seconds": round(r.seconds, 2), "cpu_seconds": round(r.cpu_seconds, 2),
                   "result": r.line, "skipped": r.skipped, "metrics": r.metrics, "commands": r.commands}
                  for r in results],
        "results": summary,
        "targets": {t: {"metric": k, "above": v} for t, (k, v) in TARGETS.items()} if options.synthetic else {},
        "options": _jsonable(dataclasses.asdict(options)),
        "environment": _environment(),
    }
    write_report(paths["report"], metrics, paths)
    return metrics


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def _environment() -> dict:
    import tensorflow as tf

    from .. import __version__

    return {"bertkit": __version__, "tensorflow": tf.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "cpus": os.cpu_count(),
            "gpus": len(tf.config.list_physical_devices("GPU"))}
