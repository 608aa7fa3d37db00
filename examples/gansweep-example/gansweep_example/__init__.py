"""An example gansweep plugin (docs/plugins.md): specs.py names what losses.py, models.py, metrics.py and
programs.py implement."""
