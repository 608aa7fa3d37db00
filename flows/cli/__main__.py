"""python -m flows.cli: the gansweep command."""
from flows.cli import app

app()
