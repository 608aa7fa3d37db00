"""The runtime around gan_tasks: rooms stacked in one order (tests/test_layout.py), lowest first:

- guard/: what guards a run: preflight checks, the finished-sweep shortcut, the sweep lock, Ctrl-C / kill -9
- actors/: Ray: the session, the trial actor, the pool that lends actors to tasks, warm actors, Ray patches
- server/: the Prefect API: the temporary one a run starts, the persistent one `serve` starts
- run/: the Prefect flow and its tasks, the runtime set-up of a run (launch.py), the nightly deployment
- cli/: the command line, one module per command group
"""
