"""Reports read from the ledger: `tminus why` (reports.why), the time words and record sections they share.

Everything here reads recorded events only (EventRecord-like objects: type, step_key, data, at);
nothing consults the current runbook file, so history reads the same after the file changes.
"""
