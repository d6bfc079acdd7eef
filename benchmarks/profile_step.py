"""Where a training step's time goes: the TensorFlow profiler over some steps of a bertkit command.

    python benchmarks/profile_step.py --first 30 --steps 20 -- \
        finetune ner --model MINILM --train ner_train.conll --out ner --epochs 1 --precision bf16

Runs the command (`bertkit ARGS...`) in this process, traces the training steps FIRST .. FIRST + STEPS
- 1 (after tracing and warm-up), and prints milliseconds per step by part of the step and by op
type. Times are op durations summed over TensorFlow's compute threads, so with two threads they
can add up to twice the wall time. The trace is kept in --logdir (TensorBoard's profile plugin reads it).
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import re
import sys

import tensorflow as tf

MATMULS = {"MatMul", "BatchMatMulV2", "_MklMatMul", "_MklNativeFusedMatMul", "_MklFusedMatMul",
           "_MklBatchMatMulV2", "_MklNativeBatchMatMulV2", "Einsum", "_MklEinsum"}  # bf16 Dense: Einsum
# (part, test on (op name, op type)), first match wins.
PARTS = [
    ("optimizer: AdamW", lambda n, t: n.startswith("adam_w/") or t.startswith("ResourceApply")),
    ("optimizer: clipping", lambda n, t: n.startswith(("clip_by_global_norm/", "global_norm/"))),
    ("matmuls", lambda n, t: t in MATMULS),
    ("embedding gradients", lambda n, t: t == "UnsortedSegmentSum"),
    ("LayerNorm", lambda n, t: "LayerNorm" in n),
    ("dropout", lambda n, t: "dropout" in n),
    ("feed-forward activation and casts", lambda n, t: "feed_forward/" in n),
    ("attention: softmax, mask, transposes", lambda n, t: "attention/" in n),
]


def part_of(name: str, op_type: str) -> str:
    name = re.sub(r"_\d+(?=/|$)", "", re.sub(r"^gradient_tape/", "", name))  # layer_0_1 -> layer_0
    for part, test in PARTS:
        if test(name, op_type):
            return part
    return "other"


def profile(logdir: str, first: int, steps: int, argv: list[str]) -> int:
    from bertkit.cli import main
    from bertkit.training import trainer

    build_step = trainer.Trainer._build_step

    def traced_build_step(self, iterator):
        step_fn, calls = build_step(self, iterator), [0]

        def step():
            calls[0] += 1
            if calls[0] == first:
                tf.profiler.experimental.start(logdir)
            out = step_fn()
            if calls[0] == first + steps - 1:
                out[0].numpy()
                tf.profiler.experimental.stop()
            return out
        return step

    trainer.Trainer._build_step = traced_build_step
    try:
        return main(argv)
    finally:
        trainer.Trainer._build_step = build_step


def summarise(logdir: str, steps: int) -> None:
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    files = sorted(glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb")), key=os.path.getmtime)
    if not files:
        sys.exit(f"no trace in {logdir}: did the run train {steps} steps after --first?")
    space = xplane_pb2.XSpace()
    with open(files[-1], "rb") as f:
        space.ParseFromString(f.read())
    by_part, by_type = collections.Counter(), collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" not in name or "::" in name:  # the executor's own events, which contain the ops
                    continue
                op_name, op_type = name.rsplit(":", 1)
                ms = event.duration_ps / 1e9 / steps
                by_part[(part_of(op_name, op_type), op_name.startswith("gradient_tape/"))] += ms
                by_type[op_type] += ms
    total = sum(by_part.values())
    print(f"ms per step, summed over compute threads ({total:.0f} in all)")
    print(f"{'part of the step':40s} {'forward':>8s} {'backward':>8s}")
    parts = sorted({p for p, _ in by_part}, key=lambda p: -(by_part[(p, False)] + by_part[(p, True)]))
    for part in parts:
        print(f"{part:40s} {by_part[(part, False)]:8.1f} {by_part[(part, True)]:8.1f}")
    print(f"\n{'op type':40s} {'ms':>8s}")
    for op_type, ms in by_type.most_common(15):
        print(f"{op_type:40s} {ms:8.1f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--first", type=int, default=30, help="the first traced step (1 = the first this run trains)")
    p.add_argument("--steps", type=int, default=20, help="steps to trace")
    p.add_argument("--logdir", default="profile_step")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the bertkit command's arguments")
    args = p.parse_args()
    argv = args.command[1:] if args.command[:1] == ["--"] else args.command
    code = profile(args.logdir, args.first, args.steps, argv)
    summarise(args.logdir, args.steps)
    sys.exit(code)


if __name__ == "__main__":
    main()
