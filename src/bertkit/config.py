"""BertConfig: the model's hyper-parameters as data.

Presets by name (tiny..large), JSON round-trip, and translation from the two config
formats found in the wild: Hugging Face `config.json` and google-research `bert_config.json`
(they share field names; HF adds bookkeeping keys that we ignore).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "tanh")

# (layers, hidden) per preset; heads = hidden / 64 and intermediate = 4 * hidden, as in the
# 24 small BERTs released by google-research (Turc et al. 2019).
PRESETS: dict[str, tuple[int, int]] = {
    "tiny": (2, 128),
    "mini": (4, 256),
    "small": (4, 512),
    "medium": (8, 512),
    "base": (12, 768),
    "large": (24, 1024),
}


@dataclasses.dataclass
class BertConfig:
    """Hyper-parameters of a BERT encoder.

    `hidden_act` is "gelu" (exact, erf) or "gelu_new" (the tanh approximation that
    google-research/bert uses); HF's name "gelu_pytorch_tanh" is accepted as the same thing.
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12

    def __post_init__(self) -> None:
        self.validate()

    # --- validation -------------------------------------------------------------------------
    def validate(self) -> None:
        for name in (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"BertConfig.{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"BertConfig.hidden_size ({self.hidden_size}) must be divisible by "
                f"num_attention_heads ({self.num_attention_heads})"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(
                f"BertConfig.hidden_act {self.hidden_act!r} is unknown; choose one of {ACTIVATIONS}"
            )
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"BertConfig.{name} must be in [0, 1), got {value!r}")
        for name in ("initializer_range", "layer_norm_eps"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"BertConfig.{name} must be a positive number, got {value!r}")

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def check_length(self, length: int | None, option: str, where: str = "") -> None:
        """Raises ValueError, before any work, when `length` tokens exceed what the model's position
        table holds (max_position_embeddings) or is not positive. `option` names the flag or
        setting that asked for it (e.g. "--max-length"), `where` the model directory."""
        if length is None:
            return
        source = f"{where}: " if where else ""
        if length < 1:
            raise ValueError(f"{option} must be positive, got {length}")
        if length > self.max_position_embeddings:
            raise ValueError(f"{source}{option} {length} exceeds the model's max_position_embeddings "
                             f"({self.max_position_embeddings}); use {option} {self.max_position_embeddings} "
                             "or less")

    def fit_length(self, length: int | None, default: int, option: str, where: str = "") -> int:
        """`length` checked by `check_length`, or when None the `default` lowered to the model's
        max_position_embeddings (a default never fails)."""
        if length is None:
            return min(default, self.max_position_embeddings)
        self.check_length(length, option, where)
        return length

    # --- presets ----------------------------------------------------------------------------
    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "BertConfig":
        """A preset by name (tiny, mini, small, medium, base, large), with optional overrides."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        layers, hidden = PRESETS[name]
        values = dict(
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=hidden // 64,
            intermediate_size=4 * hidden,
        )
        values.update(overrides)
        return cls(**values)

    # --- JSON -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_hf_dict(self) -> dict[str, Any]:
        """The dict written as a Hugging Face `config.json` (loadable by transformers.BertModel)."""
        out = self.to_dict()
        out.update(
            architectures=["BertForPreTraining"],
            model_type="bert",
            pad_token_id=0,
            position_embedding_type="absolute",
        )
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "BertConfig":
        """Reads our own JSON, HF `config.json` or Google `bert_config.json` (unknown keys ignored)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in values.items() if k in fields}
        missing = {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads"} - set(known)
        if missing:
            raise ValueError(f"config is missing required field(s): {sorted(missing)}")
        if values.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(
                "only position_embedding_type='absolute' is supported, got "
                f"{values['position_embedding_type']!r}"
            )
        if "intermediate_size" not in known:
            known["intermediate_size"] = 4 * known["hidden_size"]
        if known.get("hidden_act") == "gelu_pytorch_tanh":
            known["hidden_act"] = "gelu_new"
        return cls(**known)

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> "BertConfig":
        try:
            with open(path, encoding="utf-8") as f:
                values = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a JSON object")
        return cls.from_dict(values)

    def save(self, path: str | os.PathLike) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_json())


def resolve_config(spec: str | os.PathLike | BertConfig, **overrides: Any) -> BertConfig:
    """A config from a preset name, a JSON file, a model directory, or a BertConfig."""
    if isinstance(spec, BertConfig):
        return dataclasses.replace(spec, **overrides)
    spec = str(spec)
    if spec in PRESETS:
        return BertConfig.from_preset(spec, **overrides)
    if os.path.isdir(spec):
        for name in ("config.json", "bert_config.json"):
            if os.path.exists(os.path.join(spec, name)):
                spec = os.path.join(spec, name)
                break
        else:
            raise FileNotFoundError(f"{spec}: no config.json or bert_config.json in this directory")
    if not os.path.exists(spec):
        raise ValueError(f"{spec!r} is neither a preset ({', '.join(PRESETS)}) nor a config file")
    config = BertConfig.from_json_file(spec)
    return dataclasses.replace(config, **overrides) if overrides else config
