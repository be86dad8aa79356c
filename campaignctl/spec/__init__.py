"""Definitions: pydantic models of every YAML kind, the located loader, validation, JSON Schema."""
