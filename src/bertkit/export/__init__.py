"""Export to TensorFlow SavedModels that take raw strings (TF Serving layout, TF Hub conventions).

    from bertkit.export import export_model
    path = export_model("runs/sst2", "exports/sst2")        # -> exports/sst2/1
    # in any process, without bertkit:
    import tensorflow as tf, tensorflow_text  # noqa: F401  (registers the tokenizer ops)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    serve(text=tf.constant(["a gripping, funny film"]))   # probabilities [1, 2], label [1]

What is exported (`kind`):
  * a fine-tuned model (auto): its task's signatures, tokenization and post-processing inside
    (classify: modules.ClassifyModule; ner: ner.NerModule; qa: qa.QaModule);
  * "encoder": sequence / pooled output and an optional mean-pooled sentence embedding;
  * "preprocessor": the tokenizer alone, in the TF Hub BERT-preprocess convention.
Every model export also has a `token_ids` signature for callers who tokenize themselves.
Loading needs `import tensorflow_text` first (its WordPiece and regex ops).
"""

from __future__ import annotations

import tensorflow as tf

from .saving import read_metadata, resolve_export, save_module, version_numbers  # noqa: F401

# Fixed sequence length of preprocessor and TFLite exports unless given (or the model's positions, if fewer).
DEFAULT_SEQ_LENGTH = 128
OTHER_KINDS = ("encoder", "preprocessor")  # besides "auto" and the fine-tuning tasks' names
SAMPLE_TEXTS = ["The quick brown fox jumps over the lazy dog.", "Héllo, wörld! [MASK] 42 ünïcode"]


def build_module(model_dir: str, kind: str = "auto", *, max_length: int | None = None, pair: bool | None = None,
                 pooling: str | None = "auto", normalize: bool = False, seq_length: int | None = None):
    """The tf.Module that `export_model` saves, in memory (the server also runs it directly).

    Task options (max_length, doc_stride, ...) come from the model's config.json
    (`bertkit_task_options`, written by `bertkit finetune`), else the task's defaults;
    `max_length` overrides (for the preprocessor: the fixed length it pads to, TF Hub's
    `seq_length`, default DEFAULT_SEQ_LENGTH). `pair` (classify): serving_default takes (text,
    text_pair); default: the model was fine-tuned with a text-pair column. `seq_length` is the
    former name of the preprocessor's `max_length`: it still works for one release, and warns.
    """
    if seq_length is not None:
        import warnings

        warnings.warn("build_module(seq_length=...) is deprecated; use max_length=", DeprecationWarning, stacklevel=2)
        max_length = seq_length
    from ..pretrained import load_model, load_pretrained, read_config, saved_task
    from ..tasks.task import task_names
    from ..tokenizer import load_tokenizer

    kinds = ("auto", *task_names(), *OTHER_KINDS)
    if kind not in kinds:
        raise ValueError(f"unknown export kind {kind!r}; choose one of {kinds}")
    config, raw = read_config(model_dir)
    task = saved_task(raw)
    if kind == "auto":
        kind = task if task in task_names() else "encoder"
    elif kind in task_names() and kind != task:
        raise ValueError(f"{model_dir} holds a {task or 'encoder'} model, not a {kind} model")
    config.check_length(max_length, "--max-length", model_dir)
    if kind == "preprocessor":
        max_length = config.fit_length(max_length, DEFAULT_SEQ_LENGTH, "--max-length", model_dir)
    tokenizer = load_tokenizer(model_dir)
    if kind == "preprocessor":
        from .preprocessor import PreprocessorModule

        return PreprocessorModule(tokenizer, seq_length=max_length)
    if kind == "encoder":
        from ..embeddings import read_pooling_config
        from .modules import EncoderModule

        # "auto": as the folder's sentence-transformers files say (pooling mode, Normalize,
        # max_seq_length), else mean pooling over the model's positions.
        st = read_pooling_config(model_dir)
        dense_layers = []
        if pooling == "auto":  # the folder's Dense modules too (they follow its pooling)
            from ..model.pooling import dense_layers_of

            pooling, normalize = st.mode, normalize or st.normalize
            max_length = max_length or st.max_seq_length
            dense_layers = dense_layers_of(st.dense)
        return EncoderModule(load_pretrained(model_dir, config), tokenizer,
                             max_length=max_length or config.max_position_embeddings,
                             pooling=pooling, normalize=normalize, dense_layers=dense_layers)
    return _task_module(kind, load_model(model_dir), tokenizer, raw, max_length, pair)


def _task_module(task_name: str, model, tokenizer, raw_config: dict, max_length: int | None, pair: bool | None):
    """The task's export module, with the options saved by `bertkit finetune` (else the task's
    defaults); `max_length` overrides."""
    from ..tasks.task import get_task

    task = get_task(task_name)(**raw_config.get("bertkit_task_options", {}))
    if max_length is not None:
        task.options["max_length"] = max_length
    labels = getattr(model, "labels", None)
    if task.has_labels:
        labels = labels or [f"LABEL_{i}" for i in range(model.num_labels)]
    return task.export_module(model, tokenizer, labels, pair)


def sample_inputs(module) -> dict:
    """{signature: inputs} to check a reloaded export against the in-memory module (each module
    says what its signatures take)."""
    return module.sample_inputs(tf.constant(SAMPLE_TEXTS))


def export_model(model_dir: str, export_dir: str, kind: str = "auto", *, version: int | None = None,
                 verify: bool = True, overwrite: bool = False, **options) -> str:
    """Exports a model as a SavedModel that takes raw strings (the tokenizer runs in the graph).

    Args:
      model_dir: a fine-tuned model or any encoder checkpoint (bertkit / HF / Google directory).
      export_dir: the export root; the model goes to EXPORT_DIR/<version> (TF Serving's layout).
      kind: "auto" (the fine-tuned task; an encoder checkpoint exports its encoder), "encoder" or
        "preprocessor" (the tokenizer alone, TF Hub's BERT-preprocess convention).
      version: the version folder (default: one more than the highest there); `overwrite` allows
        replacing an existing one.
      verify: reload the SavedModel and check that it reproduces the in-memory outputs (on a few
        sample strings) before publishing it.
      options: for `build_module`: max_length, pair, pooling, normalize, ...

    Returns:
      The path EXPORT_DIR/<version>. Load it with `import tensorflow_text` then
      `tf.saved_model.load(path)`; its signatures take string tensors [batch].

    Raises:
      FileExistsError: the version exists; ValueError: a length over max_position_embeddings or
      an option the kind does not take; RuntimeError: the reloaded SavedModel differs.

    Example:
      >>> path = export_model("sst2_model", "exports/sst2")  # doctest: +SKIP
      >>> import tensorflow as tf, tensorflow_text  # doctest: +SKIP
      >>> tf.saved_model.load(path).signatures["serving_default"](text=tf.constant(["a fine film"]))  # doctest: +SKIP
      {'label': <tf.Tensor: shape=(1,), dtype=string, ...>, 'probabilities': <... shape=(1, 2) ...>, ...}
    """
    import os

    from .. import __version__
    from ..pretrained import read_config

    if version is not None and os.path.exists(os.path.join(export_dir, str(version))) and not overwrite:
        raise FileExistsError(f"{os.path.join(export_dir, str(version))} exists; pass a new version or overwrite=True")
    module = build_module(model_dir, kind, **options)
    metadata = {**module.metadata(), "bertkit_version": __version__, "source": os.path.abspath(model_dir),
                "model_config": read_config(model_dir)[1],
                "tokenizer": _tokenizer_settings(model_dir)}
    return save_module(module, export_dir, metadata, sample_inputs(module) if verify else None,
                       version=version, overwrite=overwrite)


def export_encoder(model_dir: str, export_dir: str, *, pooling: str | None = "auto", normalize: bool = False,
                   **kwargs) -> str:
    return export_model(model_dir, export_dir, "encoder", pooling=pooling, normalize=normalize, **kwargs)


def export_preprocessor(model_dir: str, export_dir: str, *, max_length: int | None = None, **kwargs) -> str:
    """The tokenizer alone as a SavedModel (TF Hub's BERT-preprocess signatures), padding to
    `max_length` (default DEFAULT_SEQ_LENGTH); see `export_model`."""
    return export_model(model_dir, export_dir, "preprocessor", max_length=max_length, **kwargs)


def _tokenizer_settings(model_dir: str) -> dict:
    from ..tokenizer import load_tokenizer

    tok = load_tokenizer(model_dir)
    return {"lower_case": tok.lower_case, "strip_accents": tok.strip_accents,
            "tokenize_chinese_chars": tok.tokenize_chinese_chars, "vocab_size": tok.vocab_size,
            "max_input_chars_per_word": tok.max_input_chars_per_word}
