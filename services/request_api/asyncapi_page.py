"""The AsyncAPI document as one HTML page, rendered here rather than by AsyncAPI's React
component: that one loads from a CDN, and the page must read on a closed network too.

Servers, channels with their operations, messages with their headers, and every schema as a
table of its properties (its JSON beside it). Pure: a document in, a page out.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

Schema = dict[str, Any]
# An enum lists at most this many values in a table (a time zone has hundreds); its JSON has all.
ENUM_SHOWN = 8
CONSTRAINTS = ("minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems", "pattern")
STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:75rem;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;padding:.3rem .5rem;
text-align:left;vertical-align:top}th{background:#f3f3f3}code,pre{background:#f6f6f6}
pre{padding:.5rem;overflow-x:auto}section{border-top:1px solid #ddd;margin-top:1.5rem}
"""


def asyncapi_page(document: Schema) -> str:
    info = document["info"]
    body = [
        f"<h1>{escape(info['title'])} {escape(info['version'])}</h1>",
        f"<p>{escape(info.get('description', ''))}</p>",
        '<p>AsyncAPI 3.0: <a href="asyncapi.json">asyncapi.json</a></p>',
        "<h2>Servers</h2>",
        _servers(document["servers"]),
        "<h2>Channels</h2>",
        *(_channel(address, spec, document["operations"]) for address, spec in document["channels"].items()),
        "<h2>Messages</h2>",
        *(_message(name, message) for name, message in document["components"]["messages"].items()),
        "<h2>Schemas</h2>",
        *(_schema(name, schema) for name, schema in document["components"]["schemas"].items()),
    ]
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(info["title"])} '
        f"AsyncAPI</title><style>{STYLE}</style></head><body>{''.join(body)}</body></html>"
    )


def _table(headings: list[str], rows: list[list[str]]) -> str:
    """Cells are HTML already: the callers escape what they put in."""
    head = "".join(f"<th>{heading}</th>" for heading in headings)
    lines = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{lines}</table>"


def _servers(servers: Schema) -> str:
    rows = [
        [
            f"<code>{escape(name)}</code>",
            f"<code>{escape(server['host'])}</code>",
            escape(server["protocol"]),
            ", ".join(_link(item) for item in server.get("security", [])) or "none",
            escape(server.get("description", "")),
        ]
        for name, server in servers.items()
    ]
    return _table(["server", "host", "protocol", "security (any of)", ""], rows)


def _channel(address: str, channel: Schema, operations: Schema) -> str:
    own = [(key, op) for key, op in operations.items() if op["channel"]["$ref"] == f"#/channels/{address}"]
    rows = [[f"<code>{escape(key)}</code>", escape(op["action"]), _services(op)] for key, op in own]
    messages = ", ".join(_link(ref) for ref in channel["messages"].values())
    return (
        f'<section id="channel-{escape(address)}"><h3><code>{escape(address)}</code></h3>'
        f"<p>{escape(channel.get('description', ''))}</p><p>Messages: {messages}</p>"
        f"{_table(['operation', 'action', 'service'], rows)}</section>"
    )


def _services(operation: Schema) -> str:
    return ", ".join(escape(tag["name"]) for tag in operation["tags"])


def _message(name: str, message: Schema) -> str:
    return (
        f'<section id="message-{escape(name)}"><h3>{escape(name)}</h3>'
        f"<p>{escape(message.get('summary', ''))}</p>"
        f"<p>Content type <code>{escape(message['contentType'])}</code>; headers "
        f"{_link(message['headers'])}; payload {_type(message['payload'])}</p></section>"
    )


def _schema(name: str, schema: Schema) -> str:
    required = set(schema.get("required", ()))
    rows = [
        [f"<code>{escape(field)}</code>", "yes" if field in required else "", _type(spec), _about(spec)]
        for field, spec in schema.get("properties", {}).items()
    ]
    table = _table(["field", "required", "type", "description"], rows) if rows else f"<p>{_type(schema)}</p>"
    return (
        f'<section id="schema-{escape(name)}"><h3>{escape(name)}</h3>'
        f"<p>{escape(schema.get('description', ''))}</p>{table}"
        f"<details><summary>JSON Schema</summary><pre>{escape(json.dumps(schema, indent=2))}</pre>"
        "</details></section>"
    )


def _link(reference: Schema) -> str:
    """A ``$ref`` to a component, as a link to its section."""
    pointer = reference["$ref"]
    kind, _, name = pointer.removeprefix("#/components/").partition("/")
    anchor = {"schemas": "schema", "messages": "message"}.get(kind)
    return f'<a href="#{anchor}-{escape(name)}">{escape(name)}</a>' if anchor else escape(name)


def _type(spec: Any) -> str:
    """A schema in a few words: a reference, a type, a union or an enum."""
    if not isinstance(spec, dict) or not spec:
        return "any"
    if "$ref" in spec:
        return _link(spec)
    if "const" in spec:
        return f"<code>{escape(json.dumps(spec['const']))}</code>"
    if "enum" in spec:
        values = [f"<code>{escape(json.dumps(value))}</code>" for value in spec["enum"][:ENUM_SHOWN]]
        more = len(spec["enum"]) - ENUM_SHOWN
        return "one of " + ", ".join(values) + (f" and {more} more" if more > 0 else "")
    for union in ("anyOf", "oneOf"):
        if union in spec:
            return " | ".join(_type(option) for option in spec[union])
    if spec.get("type") == "array":
        return f"array of {_type(spec.get('items'))}"
    kind = str(spec.get("type", "any"))
    return escape(f"{kind} ({spec['format']})" if "format" in spec else kind)


def _about(spec: Schema) -> str:
    """A field's description and constraints."""
    limits = [f"{key} {escape(json.dumps(spec[key]))}" for key in CONSTRAINTS if key in spec]
    text = escape(spec.get("description", ""))
    return "; ".join(part for part in (text, ", ".join(limits)) if part)
