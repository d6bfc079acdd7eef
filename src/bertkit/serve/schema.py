"""Request bodies: reading JSON within limits, the accepted shapes, per-item checks, and the errors
(`RequestError`: an HTTP status and one message) that the app turns into {"error": message}."""

from __future__ import annotations

import json

from fastapi import Request


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


def parse_payload(payload) -> tuple[str, list, str]:
    """(input kind, items, response style "predictions" | "outputs") of a request body."""
    if not isinstance(payload, dict):
        raise RequestError(422, "the body must be a JSON object, e.g. {\"texts\": [\"...\"]}")
    if "instances" in payload:
        return (*_parse_instances(payload["instances"]), "predictions")
    if "inputs" in payload:
        return (*_parse_columns(payload["inputs"], "inputs"), "outputs")
    if "texts" in payload:
        return "texts", _string_list(payload["texts"], "texts"), "predictions"
    if "pairs" in payload:
        pairs = _list(payload["pairs"], "pairs")
        if not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise RequestError(422, "'pairs' must be a list of [text, text_pair] lists")
        return "pairs", _pairs(pairs, "pairs"), "predictions"
    if "choices" in payload:
        return (*_parse_columns({"question": payload.get("questions"), "choices": payload["choices"]},
                                "questions/choices"), "predictions")
    if "questions" in payload or "contexts" in payload:
        return (*_parse_columns({"question": payload.get("questions"), "context": payload.get("contexts")},
                                "questions/contexts"), "predictions")
    raise RequestError(422, "expected one of the fields 'texts', 'pairs', 'questions' + 'contexts', "
                            "'questions' + 'choices', 'instances' or 'inputs'")


def _parse_instances(instances) -> tuple[str, list]:
    instances = _list(instances, "instances")
    first = instances[0]
    if isinstance(first, str):
        return "texts", _string_list(instances, "instances")
    if isinstance(first, list):
        if not all(isinstance(p, list) and len(p) == 2 for p in instances):
            raise RequestError(422, "'instances' lists must all be [text, text_pair]")
        return "pairs", _pairs(instances, "instances")
    if isinstance(first, dict):
        if not all(isinstance(x, dict) and x.keys() == first.keys() for x in instances):
            raise RequestError(422, "'instances' objects must all have the same fields")
        return _parse_columns({k: [x[k] for x in instances] for k in first}, "instances")
    raise RequestError(422, "'instances' items must be strings, [text, text_pair] lists or objects")


def _parse_columns(columns, where: str) -> tuple[str, list]:
    """{"text": [...]}, {"text", "text_pair"} or {"question", "context"} columns (or a bare list)."""
    if isinstance(columns, list):
        return "texts", _string_list(columns, where)
    if not isinstance(columns, dict):
        raise RequestError(422, f"'{where}' must be a list of strings or an object of lists")
    fields = {k for k, v in columns.items() if v is not None}
    if fields == {"question", "choices"}:
        questions = _string_list(columns["question"], f"{where}.question")
        choices = _list(columns["choices"], f"{where}.choices")
        if len(choices) != len(questions):
            raise RequestError(422, f"'{where}': question and choices must have the same length")
        for i, options in enumerate(choices):
            if not isinstance(options, list) or len(options) < 2:
                raise RequestError(422, f"'{where}.choices' item {i} must be a list of at least 2 strings")
            _string_list(options, f"{where}.choices item {i}")
        return "choices", list(zip(questions, choices))
    for kind, names in (("qa", ("question", "context")), ("pairs", ("text", "text_pair")), ("texts", ("text",))):
        if fields == set(names):
            lists = [_string_list(columns[name], f"{where}.{name}") for name in names]
            if len({len(x) for x in lists}) > 1:
                raise RequestError(422, f"'{where}': {' and '.join(names)} must have the same length")
            return kind, lists[0] if kind == "texts" else list(zip(*lists))
    raise RequestError(422, f"'{where}' needs the fields text (+ text_pair), question + context or "
                            "question + choices, "
                            f"got {sorted(columns)}")


def _list(value, where: str) -> list:
    if not isinstance(value, list):
        raise RequestError(422, f"'{where}' must be a list")
    if not value:
        raise RequestError(422, f"'{where}' is empty")
    return value


def _string_list(value, where: str) -> list[str]:
    for i, item in enumerate(_list(value, where)):
        if not isinstance(item, str):
            raise RequestError(422, f"'{where}' item {i} is not a string (got {type(item).__name__})")
    return value


def _pairs(pairs: list, where: str) -> list[tuple[str, str]]:
    _string_list([x for p in pairs for x in p], where)
    return [(a, b) for a, b in pairs]


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
