"""docs/api.md, written from the OpenAPI document: the reference cannot drift from the code."""

from __future__ import annotations

from typing import Any

from scoreboard.api.openapi import openapi_document
from scoreboard.config import Settings

Schema = dict[str, Any]
INTRO = """\
# HTTP API reference

Generated from the endpoint declarations in `scoreboard/api/` by
`python -m scoreboard api-reference > docs/api.md` (a test fails when this file is stale), with
the default settings filled in. The same declarations validate requests and build the OpenAPI
document the service serves at `GET /api/openapi.json`. The Socket.IO event is described in
[events.md](events.md); what identities, numbers and bodies may hold in
[input-rules.md](input-rules.md).

Every error is `{"status": "error", "message": "…"}`; every success has `"status": "success"`.
Endpoints marked **token** need `Authorization: Bearer <JWT>` (see [tokens](security.md#tokens)).
"""


def api_reference(settings: Settings | None = None) -> str:
    """The Markdown reference of every endpoint and every declared body."""
    document = openapi_document(settings or Settings())
    components = document["components"]
    lines = [INTRO]
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            lines += _operation(method.upper(), path, operation, components)
    lines += ["## Bodies", ""]
    for name, schema in components["schemas"].items():
        lines += _body(name, schema)
    return "\n".join(lines).rstrip() + "\n"


def _operation(method: str, path: str, operation: Schema, components: Schema) -> list[str]:
    auth = " — **token**" if operation.get("security") else ""
    lines = [f"## `{method} {path}`{auth}", "", operation["summary"] + ".", ""]
    if description := operation.get("description"):
        lines += [description, ""]
    parameters = operation.get("parameters", [])
    if parameters:
        lines += ["| Parameter | In | Accepts | Meaning |", "|---|---|---|---|"]
        for parameter in parameters:
            lines.append(
                f"| `{parameter['name']}` | {parameter['in']} | {_accepts(parameter['schema'])} "
                f"| {_cell(parameter.get('description', ''))} |"
            )
        lines.append("")
    if body := operation.get("requestBody"):
        schema = body["content"]["application/json"]["schema"]
        lines += [f"Body: {_type(schema)}.", ""]
    lines += ["| Status | Body | When |", "|---|---|---|"]
    for status, answer in operation["responses"].items():
        if "$ref" in answer:
            answer = components["responses"][answer["$ref"].rsplit("/", 1)[1]]
        content = answer.get("content", {})
        shape = ", ".join(
            _type(media["schema"]) if kind == "application/json" else kind
            for kind, media in content.items()
        )
        lines.append(f"| {status} | {shape or '—'} | {_cell(answer['description'])} |")
    return [*lines, ""]


def _body(name: str, schema: Schema) -> list[str]:
    lines = [f"### {name}", ""]
    if description := schema.get("description"):
        lines += [_cell(description), ""]
    properties = schema.get("properties")
    if not properties:
        return [*lines, f"{_accepts(schema)}.", ""]
    required = set(schema.get("required", []))
    lines += ["| Field | Type | Meaning |", "|---|---|---|"]
    for field, value in properties.items():
        optional = "" if field in required else " (optional)"
        lines.append(
            f"| `{field}`{optional} | {_accepts(value)} | {_cell(value.get('description', ''))} |"
        )
    return [*lines, ""]


def _type(schema: Schema) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f"[{name}](#{name.lower()})"
    return _accepts(schema)


def _accepts(schema: Schema) -> str:
    if "$ref" in schema:
        return _type(schema)
    if "const" in schema:
        return f"`{schema['const']!r}`".replace("'", '"')
    if "enum" in schema:
        return " or ".join(f'`"{value}"`' for value in schema["enum"])
    if "anyOf" in schema:
        return " or ".join(_accepts(option) for option in schema["anyOf"])
    kind = schema.get("type", "any")
    if kind == "array":
        most = f", at most {schema['maxItems']}" if "maxItems" in schema else ""
        return f"array of {_accepts(schema.get('items', {}))}{most}"
    if kind == "object" and "additionalProperties" in schema:
        return f"object of {_accepts(schema['additionalProperties'])}"
    if kind == "integer" and "minimum" in schema:
        default = f", default {schema['default']}" if "default" in schema else ""
        return f"integer {schema['minimum']}–{schema.get('maximum', '')}{default}"
    if kind == "string" and ("minLength" in schema or "maxLength" in schema):
        return f"string of {schema.get('minLength', 0)}–{schema.get('maxLength', '…')} characters"
    if kind == "string" and "pattern" in schema:
        return f"string matching `{schema['pattern']}`"
    return str(kind) if isinstance(kind, str) else " or ".join(kind)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
