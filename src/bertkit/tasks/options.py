"""The hyper-parameters of a fine-tuning run, as data (no TensorFlow import: the CLI builds its
flags from this dataclass, bertkit.cli.options)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class FinetuneOptions:
    """Hyper-parameters of a fine-tuning run (CLI flags map 1:1)."""

    epochs: float = 3.0
    batch_size: int = 32  # micro-batch; the optimizer step sees batch_size * accumulation_steps
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    accumulation_steps: int = 1
    precision: str = "fp32"
    # XLA-compile the training step. None: on GPUs yes; on CPUs no, since fine-tuning batches vary
    # in width and XLA:CPU compiles each width anew (15-18 s for MiniLM) while graph mode runs any
    # width at the same speed per token. docs/benchmarks.md, "Where the epoch's time goes".
    xla: bool | None = None
    freeze_encoder: bool = False
    freeze_layers: int = 0  # embeddings + the lowest N blocks
    patience: int | None = None  # epochs without dev improvement before stopping
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
