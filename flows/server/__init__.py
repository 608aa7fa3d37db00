"""The Prefect API a run or a schedule talks to: the temporary one `gansweep run` starts (temporary.py)
with its quiet settings (settings.py), and the persistent server with a scheduler `gansweep serve` starts
(local.py). Imports nothing of flows."""
