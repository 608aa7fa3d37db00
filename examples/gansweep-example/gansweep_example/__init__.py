"""An example gansweep plugin (docs/plugins.md): specs.py names what losses.py, models.py and metrics.py implement."""
