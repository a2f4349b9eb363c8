"""Pydantic models of SAM manifests (one module per kind), camelCase, frozen."""
