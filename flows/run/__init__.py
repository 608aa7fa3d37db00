"""A sweep's run: the Prefect flow (flow.py) and its tasks (train.py: the trials; fan_in.py: evaluations,
comparison, rankings and report; stored.py: a trial's state in storage; text.py: what the run shows;
search.py: a search's settings table and confirm stage; rungs.py: early stopping decided by cohort),
the runtime set-up a `gansweep run` or a notebook gets (launch.py), the nightly deployment (nightly.py)
and the defaults table (defaults_table.py).

Importing this room applies the temporary Prefect API's quiet settings (flows/server/settings.py) before
any of its modules imports Prefect: a flow called from Python runs as under `gansweep run`."""
from flows.server.settings import quiet_embedded_prefect

quiet_embedded_prefect()
