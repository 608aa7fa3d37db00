"""Data: where bytes live and what they mean. storage.py (a local folder or S3 through fsspec),
schema.py (the Parquet tables every room writes and reads), datasets.py (datasets by name, written
to storage once and read from there by every trial), images.py (uploading the canonical image files),
ingest.py (`gansweep data add`: your own images as versioned shards), userdata.py (finding, listing
and memory-mapping those).

Above methods/ (registries, parameter schemas), below config/, training/ and evaluation/.
"""
