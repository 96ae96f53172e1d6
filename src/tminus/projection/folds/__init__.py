"""The folds of a run's events, one module per concern; each writes a `ViewState` and is dispatched
to by event type in projection/view.py. Lower folds never import higher ones: stops <- sections <-
the rest (runs, steps, approvals, monitor, rollback), and notes stand alone."""
