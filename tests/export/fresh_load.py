"""Runs exported SavedModels in a fresh interpreter that imports only tensorflow and tensorflow_text.

    python fresh_load.py JOBS.json OUT.json

JOBS.json: [{"name", "path", "signature", "inputs": {input name: [strings]}}]. OUT.json gets
{"modules": [bertkit / keras modules loaded], "results": {name: {output: nested lists}}}.
Strings come back as str. Used by test_parity.py; deliberately free of bertkit imports.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tensorflow_text  # noqa: E402, F401  (registers the ops the exported graphs use)


def to_python(value):
    array = value.numpy()
    if array.dtype == object:
        return [to_python_str(x) for x in array.tolist()] if array.ndim else array.item().decode("utf-8")
    return array.tolist()


def to_python_str(x):
    if isinstance(x, list):
        return [to_python_str(y) for y in x]
    return x.decode("utf-8")


def main(jobs_file, out_file):
    with open(jobs_file, encoding="utf-8") as f:
        jobs = json.load(f)
    results, loaded = {}, {}
    for job in jobs:
        if job["path"] not in loaded:
            loaded[job["path"]] = tf.saved_model.load(job["path"])
        fn = loaded[job["path"]].signatures[job["signature"]]
        inputs = {k: tf.constant(v) for k, v in job["inputs"].items()}
        results[job["name"]] = {k: to_python(v) for k, v in fn(**inputs).items()}
    modules = sorted(m for m in sys.modules if m.split(".")[0] in ("bertkit", "keras"))
    with open(out_file, "w", encoding="utf-8") as f:
        json.dump({"modules": modules, "results": results}, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
