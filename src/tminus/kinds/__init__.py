"""Step kinds: one module per kind, each registering an executor in `tminus.kinds.registry`.

Kinds never import the CLI or the engine: the engine hands them a `StepContext`.
"""
