"""What guards a run, before and while it trains: preflight checks (storage, datasets, resources), the
finished-sweep shortcut, the sweep lock in storage, and Ctrl-C / kill -9 handling of this run's processes.
Imports gan_tasks only, and Ray where a check needs the cluster."""
