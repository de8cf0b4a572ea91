"""The JSON Schema of ``config.yaml``, made from the settings models (one truth).

Editors that speak JSON Schema (``# yaml-language-server: $schema=./config.schema.json``) check
keys and types as the file is written; the connector still validates on start-up and reports
every problem by its path. Any value may instead be a reference (``${NAME}``,
``${file:/path}``, ``${credential:NAME}``), resolved at start-up. Regenerate the shipped file
with ``python -m connector.config_schema > config.schema.json`` (a test checks it is current).
"""

from __future__ import annotations

import json
from typing import Any

from connector.config import Settings

REFERENCE = {
    "type": "string",
    "pattern": r"^.*\$\{[^}]+\}.*$",
    "description": "a reference resolved at start-up: ${NAME} (environment), ${file:/path}",
}
_SCALARS = {"string", "integer", "number", "boolean"}


def _allow_references(node: Any) -> Any:
    """Every scalar may be given as a reference instead."""
    if isinstance(node, dict):
        node = {k: _allow_references(v) for k, v in node.items()}
        if node.get("type") in _SCALARS and "properties" not in node:
            return {"anyOf": [node, REFERENCE]}
        return node
    if isinstance(node, list):
        return [_allow_references(v) for v in node]
    return node


def config_schema() -> dict[str, Any]:
    """The schema, with references allowed wherever a value is."""
    schema = Settings.model_json_schema(mode="validation")
    schema = _allow_references(schema)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "lapor-connector config.yaml",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def main() -> None:
    print(json.dumps(config_schema(), indent=2, ensure_ascii=False))  # noqa: T201 (the output)


if __name__ == "__main__":
    main()
