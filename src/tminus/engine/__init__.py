"""The engine: planning, execution, rollback and resume. It reads the spec and drives the kinds."""
