"""The training programs (gan_tasks/training/program.py's interface), one module per family; each is
registered by name, torch-free, in gan_tasks/methods/programs.py."""
