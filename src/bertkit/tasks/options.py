"""The hyper-parameters of fine-tuning and pretraining runs, as data (no TensorFlow import: the
CLI builds its flags from these dataclasses, bertkit.cli.options)."""

from __future__ import annotations

import dataclasses
import warnings


@dataclasses.dataclass
class FinetuneOptions:
    """Hyper-parameters of a fine-tuning run (CLI flags map 1:1)."""

    epochs: float = 3.0
    batch_size: int = 32  # micro-batch; the optimizer step sees batch_size * accumulation_steps
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    accumulation_steps: int = 1
    # "auto": bf16 on CPUs with AMX-BF16 units, else fp32 (bertkit.cpu.auto_training_precision);
    # "fp32", "bf16" (Keras mixed_bfloat16) or "fp16" (mixed_float16 with loss scaling) force one.
    precision: str = "auto"
    # XLA-compile the training step. None: on GPUs yes; on CPUs no, since fine-tuning batches vary
    # in width and XLA:CPU compiles each width anew (15-18 s for MiniLM) while graph mode runs any
    # width at the same speed per token. docs/benchmarks.md, "Where the epoch's time goes".
    xla: bool | None = None
    freeze_encoder: bool = False
    freeze_layers: int = 0  # embeddings + the lowest N blocks
    patience: int | None = None  # epochs without dev improvement before stopping
    metric: str | None = None  # the dev metric that picks the best epoch; None: the task's own
    seed: int = 0
    max_steps: int | None = None
    progress: bool = True
    random_init: bool = False  # ignore init's weights (config + vocab only): a no-pretraining baseline
    # Replace the checkpoint's hidden (also before the classifier) and attention-probability dropout
    # rates; None keeps them. The fine-tuned model's config records the rates it was trained with.
    dropout: float | None = None
    attention_dropout: float | None = None
    # Batches are cut to their longest row rounded up to this. None: 32 under XLA (each width is a
    # compilation, so few widths), else 1: graph mode takes any width at no per-shape cost, so every
    # padded position is wasted work (a MiniLM NER epoch: 68 s at 8, 59 s at 1; docs/benchmarks.md).
    pad_multiple: int | None = None


@dataclasses.dataclass
class PretrainOptions:
    """Hyper-parameters of a pretraining run (`bertkit pretrain` flags map 1:1)."""

    config: str = "mini"  # preset name or config.json
    max_length: int = 128  # word pieces per sequence, [CLS] and [SEP]s included
    max_predictions: int = 20
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    batch_size: int = 32  # micro-batch; a step uses batch_size * accumulation_steps sequences
    steps: int = 1000
    learning_rate: float = 1e-4
    warmup_steps: int | None = None  # default: 10% of steps
    accumulation_steps: int = 1
    # "auto": bf16 on CPUs with AMX-BF16 units, else fp32 (bertkit.cpu.auto_training_precision).
    precision: str = "auto"
    # XLA-compile the whole step. None: yes on GPUs and for fp32; no for bf16/fp16 on CPUs, where
    # graph mode reaches oneDNN's bf16 (AMX) matmuls and XLA:CPU's are no faster than fp32.
    xla: bool | None = None
    whole_word_mask: bool = False
    dynamic_mask: bool = False
    dupe_factor: int | None = None
    seed: int = 12345
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    model: str | None = None  # a pretrained model (directory or Hub name) to start a fresh run from
    strategy: str = "auto"
    errors: str = "strict"
    input_format: str = "auto"  # corpus layout: "lines", "prose" or "auto" (per file), as `pretrain-data --format`
    progress: bool = True
    # The names before `max_length` and `model` (the CLI's --max-length and --model); they still
    # work for one release, with a DeprecationWarning.
    seq_len: dataclasses.InitVar[int | None] = None
    init_from: dataclasses.InitVar[str | None] = None

    def __post_init__(self, seq_len, init_from):
        for old, new, value in (("seq_len", "max_length", seq_len), ("init_from", "model", init_from)):
            if value is not None:
                warnings.warn(f"PretrainOptions({old}=...) is deprecated; use {new}=", DeprecationWarning, stacklevel=3)
                setattr(self, new, value)
