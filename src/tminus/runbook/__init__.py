"""The runbook spec: models, loading with source positions, templating, validation, schema."""
