"""Training: one trial from its config to its checkpoints and metric rows, in plain PyTorch.

trial.py: the trial loop, checkpoint/resume, metric rows and trial rows; program.py: the Program
interface, programs/ its implementations (gan, conditional, cyclegan); packing.py: the seeds of
one cell trained as one stacked model, started and resumed by pack_run.py; preempt.py: a node's SIGTERM.
Above config/, methods/ and data/; evaluation/ builds on it.
"""
