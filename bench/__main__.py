"""python -m bench [--short] [--storage URL] [--s3-endpoint-url URL] [--mnist DIR]: `gansweep bench`."""
import sys

from flows.cli import app

app(["bench", *sys.argv[1:]])
