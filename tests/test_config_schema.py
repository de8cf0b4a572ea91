"""The JSON Schema of config.yaml: current, valid, accepting the shipped file and refusing typos."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import yaml

from connector.config_schema import config_schema

SHIPPED = Path(__file__).parent.parent / "config.schema.json"


def test_the_shipped_schema_is_current() -> None:
    """UPDATE_GOLDEN=1 rewrites it (or: python -m connector.config_schema > config.schema.json)."""
    made = config_schema()
    if os.environ.get("UPDATE_GOLDEN") == "1":
        SHIPPED.write_text(json.dumps(made, indent=2, ensure_ascii=False) + "\n")
    assert json.loads(SHIPPED.read_text()) == made


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SHIPPED.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_shipped_config_fits_and_a_typo_does_not() -> None:
    document = yaml.safe_load((SHIPPED.parent / "config.yaml").read_text())
    assert list(validator().iter_errors(document)) == []
    misspelt = {**document, "lapor": {**document["lapor"], "page_sise": 100}}
    assert [e.message for e in validator().iter_errors(misspelt)]
    wrong_type = {**document, "lapor": {**document["lapor"], "page_size": "many"}}
    assert list(validator().iter_errors(wrong_type))


def test_references_are_allowed_where_values_are() -> None:
    document = yaml.safe_load((SHIPPED.parent / "config.yaml").read_text())
    referenced = {**document, "lapor": {**document["lapor"], "requests_per_minute": "${RATE}"}}
    assert list(validator().iter_errors(referenced)) == []
