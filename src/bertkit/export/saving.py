"""Writing and finding exports in the TensorFlow Serving layout.

    EXPORT_DIR/
      1/                            a version: TF Serving loads the highest number
        saved_model.pb, variables/
        assets.extra/bertkit_export.json   task, labels, options, signatures (for `bertkit serve`)
      2/ ...

A version is written to a hidden temporary folder, loaded back and compared with the in-memory
module (outputs and variable count), and only then renamed into place, so a server watching
EXPORT_DIR never sees a half-written or silently incomplete version.
"""

from __future__ import annotations

import json
import logging
import os
import shutil

import numpy as np
import tensorflow as tf

log = logging.getLogger("bertkit")

METADATA_FILE = os.path.join("assets.extra", "bertkit_export.json")


def version_numbers(export_dir: str) -> list[int]:
    if not os.path.isdir(export_dir):
        return []
    return sorted(int(name) for name in os.listdir(export_dir)
                  if name.isdigit() and os.path.exists(os.path.join(export_dir, name, "saved_model.pb")))


def resolve_export(path: str) -> str | None:
    """The SavedModel folder of an export: `path` itself if it holds saved_model.pb, else its
    highest numbered version; None if `path` is not an export."""
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    versions = version_numbers(path)
    return os.path.join(path, str(versions[-1])) if versions else None


def read_metadata(saved_model_dir: str) -> dict:
    file = os.path.join(saved_model_dir, METADATA_FILE)
    if not os.path.exists(file):
        raise FileNotFoundError(f"{saved_model_dir}: no {METADATA_FILE} (not written by `bertkit export`)")
    with open(file, encoding="utf-8") as f:
        return json.load(f)


def save_module(module, export_dir: str, metadata: dict, check_inputs: dict | None = None,
                version: int | None = None, overwrite: bool = False) -> str:
    """Saves `module` as EXPORT_DIR/<version> (default: one more than the highest); returns that path.

    `check_inputs` ({signature: {input: tensor}}) are run through the in-memory module and the
    reloaded SavedModel, which must agree (max |diff| <= 1e-5).
    """
    version = version if version is not None else (version_numbers(export_dir) or [0])[-1] + 1
    final = os.path.join(export_dir, str(version))
    if os.path.exists(final):
        if not overwrite:
            raise FileExistsError(f"{final} exists; pass a new version or overwrite=True")
        shutil.rmtree(final)
    os.makedirs(export_dir, exist_ok=True)
    tmp = os.path.join(export_dir, f".tmp-{version}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        signatures = module.signatures()
        tf.saved_model.save(module, tmp, signatures=signatures)
        metadata = {**metadata, "signatures": signature_summary(tmp)}
        os.makedirs(os.path.join(tmp, "assets.extra"), exist_ok=True)
        with open(os.path.join(tmp, METADATA_FILE), "w", encoding="utf-8") as f:
            json.dump(metadata, f, indent=2, sort_keys=True)
            f.write("\n")
        if check_inputs:
            check_saved_model(tmp, signatures, check_inputs, len(getattr(module, "model_variables", ())))
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("exported %s (%s) to %s", metadata.get("kind"), ", ".join(signatures), final)
    return final


def signature_summary(saved_model_dir: str) -> dict:
    """{signature: {"inputs": [...], "outputs": [...]}} read from saved_model.pb (no loading)."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    return {name: {"inputs": sorted(sig.inputs), "outputs": sorted(sig.outputs)}
            for name, sig in proto.meta_graphs[0].signature_def.items() if not name.startswith("__")}


def check_saved_model(path: str, signatures: dict, check_inputs: dict, n_variables: int) -> None:
    """Raises RuntimeError unless the SavedModel at `path` reproduces the in-memory signatures."""
    loaded = tf.saved_model.load(path)
    saved_variables = len(getattr(loaded, "model_variables", ()))
    if saved_variables != n_variables:
        raise RuntimeError(f"the SavedModel holds {saved_variables} model variables, the model {n_variables}")
    for name, inputs in check_inputs.items():
        want, got = signatures[name](**inputs), loaded.signatures[name](**inputs)
        for key, value in want.items():
            a, b = value.numpy(), got[key].numpy()
            if a.dtype == object:
                same = a.shape == b.shape and (a == b).all()
            else:
                same = a.shape == b.shape and (a.size == 0 or np.abs(a.astype(float) - b.astype(float)).max() <= 1e-5)
            if not same:
                raise RuntimeError(f"the reloaded SavedModel's {name}/{key} differs from the model's")
