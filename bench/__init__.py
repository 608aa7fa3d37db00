"""gansweep's benchmarks: one module per figure (p1_overhead.py ... p5_tune.py, contention.py), each with what
it measures, its acceptance and its theoretical minimum in its docstring; harness.py is what they share
(the bench sweep's config, the bare PyTorch loop, Figure); run.py runs them all side by side.

Not part of the shipped runtime: the wheel holds gan_tasks and flows only, and nothing there imports this
package (`gansweep bench` imports it when it runs, from a checkout). `python -m bench --short` runs it too.
"""
