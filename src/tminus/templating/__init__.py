"""Templating and masking: the run's runtime text machinery, apart from the runbook model.

`templater` renders `{{ ... }}` with the run's context (vars, env, steps, run, secrets); `masking`
keeps secret values out of everything shown or stored. The runbook model uses the parser only to
check templates at validation time.
"""
