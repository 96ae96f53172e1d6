"""`tminus rehearse`: roll out up to each phase, fail on purpose, let the rollback run as in production,
prove the state is back (fingerprints before and after) and measure the recovery time.

- record.py: the rehearsal's own record in the ledger (a run of kind `rehearsal`: its plan, one
  `rehearsal.cycle` event per cycle, its verdict); the projection folds it (projection/folds/rehearsals.py).
- faults.py: the faults a cycle injects, as policies and a killed child process (no edits to the runbook).
"""
