"""Request bodies: reading JSON within limits, the accepted shapes, per-item checks, and the errors
(`RequestError`: an HTTP status and one message) that the app turns into {"error": message}."""

from __future__ import annotations

import json
from typing import Annotated, ClassVar

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, StrictStr, TypeAdapter, ValidationError, model_validator


class RequestError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


async def read_json(request: Request, limit: int):
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise RequestError(415, f"content type must be application/json, got {media_type or 'none'!r}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"request body over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestError(413, f"request body over {limit} bytes")
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise RequestError(400, "request body is not UTF-8") from None
    except json.JSONDecodeError as e:
        raise RequestError(400, f"request body is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") \
            from None


# ---- the accepted shapes (pydantic) ---------------------------------------------------------
# Every body becomes columns of one input kind: {"text"}, {"text", "text_pair"}, {"question",
# "context"} or {"question", "choices"}, each a non-empty list of strings of one length.

Strings = Annotated[list[StrictStr], Field(min_length=1)]
Pairs = Annotated[list[tuple[StrictStr, StrictStr]], Field(min_length=1)]


class _Columns(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: ClassVar[str]

    @model_validator(mode="after")
    def _same_length(self):
        if len({len(getattr(self, name)) for name in type(self).model_fields}) > 1:
            raise ValueError(f"{' and '.join(type(self).model_fields)} must have the same length")
        return self

    def items(self) -> list:
        columns = [getattr(self, name) for name in type(self).model_fields]
        return columns[0] if len(columns) == 1 else list(zip(*columns))


class TextColumns(_Columns):
    kind: ClassVar[str] = "texts"
    text: Strings


class PairColumns(_Columns):
    kind: ClassVar[str] = "pairs"
    text: Strings
    text_pair: Strings


class QAColumns(_Columns):
    kind: ClassVar[str] = "qa"
    question: Strings
    context: Strings


class ChoiceColumns(_Columns):
    kind: ClassVar[str] = "choices"
    question: Strings
    choices: Annotated[list[Annotated[list[StrictStr], Field(min_length=2)]], Field(min_length=1)]


COLUMNS = {frozenset(model.model_fields): model for model in (TextColumns, PairColumns, QAColumns, ChoiceColumns)}
_PAIRS = TypeAdapter(Pairs)


def parse_payload(payload) -> tuple[str, list, str]:
    """(input kind, items, response style "predictions" | "outputs") of a request body."""
    if not isinstance(payload, dict):
        raise RequestError(422, "the body must be a JSON object, e.g. {\"texts\": [\"...\"]}")
    if "instances" in payload:
        return (*_parse_instances(payload["instances"]), "predictions")
    if "inputs" in payload:
        inputs = payload["inputs"]
        columns = {"text": inputs} if isinstance(inputs, list) else inputs
        return (*_parse_columns(columns, "inputs", {"text": "inputs"} if isinstance(inputs, list) else {}),
                "outputs")
    if "texts" in payload:
        return (*_parse_columns({"text": payload["texts"]}, "texts", {"text": "texts"}), "predictions")
    if "pairs" in payload:
        pairs = _validate(_PAIRS, payload["pairs"], "pairs")
        return "pairs", [tuple(p) for p in pairs], "predictions"
    names = {"question": "questions", "context": "contexts", "choices": "choices"}
    if "choices" in payload:
        columns = {"question": payload.get("questions"), "choices": payload["choices"]}
        return (*_parse_columns(columns, "questions/choices", names), "predictions")
    if "questions" in payload or "contexts" in payload:
        columns = {"question": payload.get("questions"), "context": payload.get("contexts")}
        return (*_parse_columns(columns, "questions/contexts", names), "predictions")
    raise RequestError(422, "expected one of the fields 'texts', 'pairs', 'questions' + 'contexts', "
                            "'questions' + 'choices', 'instances' or 'inputs'")


def _parse_instances(instances) -> tuple[str, list]:
    """TF Serving's row form: strings, [text, text_pair] lists, or objects with the column fields."""
    first = instances[0] if isinstance(instances, list) and instances else None
    if isinstance(first, list):
        return "pairs", [tuple(p) for p in _validate(_PAIRS, instances, "instances")]
    if isinstance(first, dict):
        if not all(isinstance(x, dict) and x.keys() == first.keys() for x in instances):
            raise RequestError(422, "'instances' objects must all have the same fields")
        return _parse_columns({k: [x[k] for x in instances] for k in first}, "instances")
    if first is not None and not isinstance(first, str):
        raise RequestError(422, "'instances' items must be strings, [text, text_pair] lists or objects")
    return _parse_columns({"text": instances}, "instances", {"text": "instances"})


def _parse_columns(columns, where: str, names: dict[str, str] | None = None) -> tuple[str, list]:
    """(kind, items) of columns {field: list}; `names` maps a field to the name the body used."""
    if not isinstance(columns, dict):
        raise RequestError(422, f"'{where}' must be a list of strings or an object of lists")
    fields = frozenset(k for k, v in columns.items() if v is not None)
    model = COLUMNS.get(fields)
    if model is None:
        raise RequestError(422, f"'{where}' needs the fields text (+ text_pair), question + context or "
                                f"question + choices, got {sorted(columns)}")
    parsed = _validate(model, {k: columns[k] for k in fields}, where, names)
    return model.kind, parsed.items()


def _validate(schema, value, where: str, names: dict[str, str] | None = None):
    """`value` validated by a pydantic model or TypeAdapter; the first problem as one 422 message."""
    try:
        if isinstance(schema, TypeAdapter):
            return schema.validate_python(value)
        return schema.model_validate(value)
    except ValidationError as e:
        raise RequestError(422, _message(e.errors(include_url=False)[0], where, names or {})) from None


def _message(error: dict, where: str, names: dict[str, str]) -> str:
    """A pydantic error as the API words it: the body's own field names, 0-based item numbers."""
    loc = list(error["loc"])
    if isinstance(error["loc"][0] if loc else None, str):
        field = names.get(loc[0], f"{where}.{loc[0]}")
        loc = loc[1:]
    else:
        field = where
    index = next((x for x in loc if isinstance(x, int)), None)
    kind = error["type"]
    if where in ("pairs", "instances") and field == where and (len(loc) > 1 or kind == "tuple_type"):
        return f"'{where}' must be a list of [text, text_pair] lists"
    if kind == "list_type":
        return f"'{field}' must be a list" + (f" (item {index})" if index is not None else "")
    if kind == "too_short":
        return f"'{field}' is empty" if index is None else f"'{field}' item {index} must be a list of at least 2 strings"
    if kind == "string_type":
        where_in = f"item {index}" if len(loc) == 1 else f"item {loc[0]}, position {loc[1]}"
        return f"'{field}' {where_in} is not a string (got {type(error['input']).__name__})"
    if kind == "value_error":
        return f"'{where}': {error['ctx']['error']}"
    return f"'{field}': {error['msg']}"


def check_limits(items: list, options) -> None:
    """Item count, empty and over-long texts, lone surrogates (`options`: the app's ServeOptions)."""
    if len(items) > options.max_items_per_request:
        raise RequestError(413, f"{len(items)} inputs in one request; the limit is {options.max_items_per_request}")
    for i, item in enumerate(items):
        for text in (item,) if isinstance(item, str) else _flat(item):
            if not text.strip():
                raise RequestError(422, f"input {i} is empty or only whitespace")
            if len(text) > options.max_text_chars:
                raise RequestError(413, f"input {i} has {len(text)} characters; the limit is {options.max_text_chars}")
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise RequestError(422, f"input {i} is not valid Unicode (lone surrogate)") from None


def _flat(item) -> list[str]:
    """The strings of an item: a pair, or a (question, [choices]) tuple."""
    return [x for part in item for x in ([part] if isinstance(part, str) else part)]


def columnar(results: list[dict]) -> dict:
    """TF Serving's columnar "outputs" form of per-item results."""
    return {key: [r[key] for r in results] for key in results[0]} if results else {}
