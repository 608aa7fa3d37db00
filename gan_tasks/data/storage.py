"""Object storage through fsspec: a local folder, file://, or s3://bucket/prefix (s3fs).

The storage layout under the root (documented in docs/storage.md):
  datasets/<name>/<params-hash>/train.npy    synthetic 2D data (ring-8, grid-25), written on first use
  datasets/<name>/{train,test}_{a,b}[_labels].npy  two-domain uploads (CycleGAN), uint8 (N, C, H, W)
  datasets/.../manifest.json                 shape + sha256 of each .npy: the node cache's key
  datasets/<name>/<id>/{train,test}-NNNNN.npy  gansweep data add, and data upload's one-domain images: uint8
                                             shards + manifest.json (data/ingest.py, data/images.py)
  datasets/<name>/current.json               the id `dataset: <name>` resolves to
  sweeps/<sweep_id>/config.yaml              the resolved sweep config
  sweeps/<sweep_id>/trials/<trial_id>.parquet
  sweeps/<sweep_id>/metrics/<trial_id>-<first_step:09d>.parquet
  sweeps/<sweep_id>/evaluations/<trial_id>.parquet           final metrics (gan_tasks/evaluation/evaluate.py)
  sweeps/<sweep_id>/eval_every/<trial_id>-<step:09d>.parquet  cheap metrics during training (evaluation.eval_every);
      sweeps written before eval_every/ existed keep them in evaluations/ under that name: read as such
  sweeps/<sweep_id>/samples/<trial_id>.npy     samples the report plots (2D points, or 64 images)
  sweeps/<sweep_id>/rankings/rankings.parquet  per cell and metric over seeds (gan_tasks/evaluation/rankings.py)
  sweeps/<sweep_id>/checkpoints/<trial_id>/step-<step:09d>.pt  (+ config.json)
  sweeps/<sweep_id>/report/index.html
  evaluators/<dataset>/<sha256[:16]>.pt|.json  in-domain classifier + its test accuracy (gansweep evaluator train)
  evaluators/<dataset>/current.json          the classifier hash sweeps use unless evaluation.classifier_hash pins one
  evaluators/stats/<dataset>-<data sha>-n<N>-<extractor>-<weights hash>-*.pt  real-data features/FID stats
  sweeps/<sweep_id>/lock.json                the running sweep's lock: owner + expiry (flows/guard/lock.py)
Credentials are never part of a Storage: s3fs takes them from the standard AWS chain
(environment, profile, instance role), so they never reach configs, logs or outputs.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import time
import uuid
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlparse

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from gan_tasks.errors import UserError

SCHEMES = ("file", "s3")
log = logging.getLogger("gansweep.storage")

# Backoff 0.5, 1, 2, 4, 8, 8, ... s for up to RETRY_SECONDS: outlives a minute-long S3 outage
# (a preempted gateway, a restarting MinIO) without hiding a real misconfiguration for long.
RETRY_SECONDS = 90.0
# Errors that retrying cannot fix: the object is absent, or we may not touch it.
_FINAL = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
# Marks a local file still being written (write aside, then rename); ls() never shows one. The aside
# file is hidden too (".name.partial-x"): a kill -9 mid-write leaves it, and pandas/pyarrow reading a
# folder skip dot-files, so a user's read_parquet("…/metrics/") never sees its rows twice.
_PARTIAL = ".partial-"


def _transient() -> tuple[type[BaseException], ...]:
    """Network errors worth retrying: OS-level ones, and botocore's own (not OSError subclasses)."""
    errors: tuple[type[BaseException], ...] = (OSError, ConnectionError, TimeoutError)
    try:
        from botocore.exceptions import ConnectionError as BotoConnectionError, HTTPClientError

        errors += (BotoConnectionError, HTTPClientError)
    except ImportError:  # local storage only: botocore is not needed
        pass
    return errors


def retrying(fn, what: str, budget: float = RETRY_SECONDS):
    """Call fn(); on a transient I/O error retry with exponential backoff, logging each retry."""
    delay, t0 = 0.5, time.monotonic()
    while True:
        try:
            return fn()
        except _FINAL:
            raise
        except _transient() as e:
            if time.monotonic() - t0 + delay > budget:
                raise
            log.warning("storage: %s failed (%s: %s); retrying in %.1f s", what, type(e).__name__, e, delay)
            time.sleep(delay)
            delay = min(delay * 2, 8.0)


def node_cache(*parts: str) -> str:
    """A folder of this node's local cache ($GANSWEEP_CACHE, default ~/.cache/gansweep)."""
    return os.path.join(os.environ.get("GANSWEEP_CACHE", os.path.expanduser("~/.cache/gansweep")), *parts)


def write_local(path: str, data: bytes, check: Callable[[str], None] | None = None) -> None:
    """Publish a local file atomically: readers (other trials on this node) see no file or all of it.

    Written aside under a name ls() never shows, flushed to disk, then renamed over `path`. `check`
    (given the aside file's path) may refuse the content by raising; a failed write or check leaves
    nothing behind. Storage.write_bytes on a local root and the node caches all write through here.
    """
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}{_PARTIAL}{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if check is not None:
            check(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


class StorageError(UserError, ValueError):
    """A storage URL that names no usable location."""


@dataclass(frozen=True)
class Storage:
    url: str  # normalised root: an absolute local path or s3://bucket/prefix, no trailing slash
    endpoint_url: str | None = None  # S3-compatible servers (MinIO, moto); None = AWS
    region: str | None = None

    @classmethod
    def parse(cls, url: str, endpoint_url: str | None = None, region: str | None = None) -> "Storage":
        url = str(url).strip()
        if not url:
            raise StorageError("storage: empty URL; give a local path, file://PATH or s3://bucket/prefix")
        scheme = urlparse(url).scheme
        if len(scheme) <= 1:  # a plain path (or a Windows drive letter)
            return cls(os.path.abspath(url))
        if scheme not in SCHEMES:
            raise StorageError(f"storage: unsupported scheme {scheme!r} in {url!r}; valid: {', '.join(SCHEMES)} "
                             "or a local path")
        if scheme == "file":
            return cls(os.path.abspath(url[len("file://"):]))
        if not urlparse(url).netloc:
            raise StorageError(f"storage: {url!r} names no bucket; use s3://bucket/prefix")
        endpoint_url = endpoint_url or os.environ.get("GANSWEEP_S3_ENDPOINT_URL") or None
        region = region or os.environ.get("GANSWEEP_S3_REGION") or None
        return cls(url.rstrip("/"), endpoint_url, region)

    @property
    def is_s3(self) -> bool:
        return self.url.startswith("s3://")

    @property
    def storage_options(self) -> dict:
        """What pandas / pyarrow / fsspec need besides the URL (never credentials)."""
        if not self.is_s3:
            return {}
        client: dict = {}
        if self.endpoint_url:
            client["endpoint_url"] = self.endpoint_url
        if self.region:
            client["region_name"] = self.region
        return {"client_kwargs": client} if client else {}

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        # fsspec caches filesystem instances by their arguments: this is cheap after the first call.
        if not self.is_s3:
            return fsspec.filesystem("file")
        # No listing cache: other processes (actors, other nodes) write here all the time.
        return fsspec.filesystem("s3", use_listings_cache=False, **self.storage_options)

    def uri(self, *parts: str) -> str:
        """A full URL usable with pandas.read_parquet(uri, storage_options=...)."""
        return "/".join([self.url, *[p.strip("/") for p in parts if p]])

    def exists(self, *parts: str) -> bool:
        path = self.uri(*parts)
        return retrying(lambda: self.fs.exists(path), f"exists {path}")

    def read_bytes(self, *parts: str) -> bytes:
        path = self.uri(*parts)
        return retrying(lambda: self.fs.cat_file(path), f"read {path}")

    def write_bytes(self, data: bytes, *parts: str) -> None:
        """Publish atomically: readers see the old object or the whole new one, never a part.

        S3 PUTs are atomic by themselves; on a local disk we write aside and rename.
        """
        path = self.uri(*parts)
        if self.is_s3:
            retrying(lambda: self.fs.pipe_file(path, data), f"write {path}")
            return
        write_local(path, data)

    def ls(self, *parts: str, prefix: str = "") -> list[str]:
        """Names (not paths) directly under a folder, those starting with `prefix`; [] if it does not exist.
        A trial's files by its id as prefix: S3 lists only the matching keys; a local folder is scanned
        without fsspec's per-name path work (a 10,000-trial sweep's metrics folder holds ~20,000 names)."""
        path = self.uri(*parts)
        try:
            if self.is_s3:  # find(prefix=): one delimited listing of the matching keys
                found = retrying(lambda: self.fs.find(path, maxdepth=1, withdirs=True, prefix=prefix) if prefix
                                 else self.fs.ls(path, detail=False), f"list {path}/{prefix}")
                names = (p.rstrip("/").rsplit("/", 1)[-1] for p in found)
            else:
                with os.scandir(path) as entries:
                    names = [e.name for e in entries if e.name.startswith(prefix)]
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(n for n in names if _PARTIAL not in n)  # a write cut short by a kill is not an object

    def remove_partials(self, *parts: str, prefix: str = "") -> int:
        """Remove writes cut short by a kill (local folders only: S3 PUTs leave none). Returns how many."""
        if self.is_s3:
            return 0
        folder = self.uri(*parts)
        try:
            with os.scandir(folder) as entries:
                stale = [e.name for e in entries if _PARTIAL in e.name and e.name.lstrip(".").startswith(prefix)]
        except (FileNotFoundError, NotADirectoryError):
            stale = []
        for n in stale:
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(folder, n))
        return len(stale)

    def rm(self, *parts: str, recursive: bool = False) -> None:
        path = self.uri(*parts)
        try:
            retrying(lambda: self.fs.rm(path, recursive=recursive), f"remove {path}")
        except FileNotFoundError:
            pass

    def write_parquet(self, table: pa.Table, *parts: str) -> None:
        buf = io.BytesIO()
        pq.write_table(table, buf)
        self.write_bytes(buf.getvalue(), *parts)

    def read_table(self, *parts: str, keep: Callable[[str], bool] | None = None) -> pa.Table | None:
        """All Parquet files of one folder (those whose name `keep` accepts) as one table; None if none."""
        names = [n for n in self.ls(*parts) if n.endswith(".parquet") and (keep is None or keep(n))]
        if not names:
            return None
        # A few reads in flight: a 256-trial sweep's metrics are ~500 small objects, each a round trip on S3.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(8, len(names))) as pool:
            tables = list(pool.map(lambda n: self.read_parquet(*parts, n), names))
        return pa.concat_tables(tables, promote_options="default")

    def read_parquet(self, *parts: str) -> pa.Table:
        """One Parquet file; a damaged one is a DamagedFile naming it (not pyarrow's bare ArrowInvalid)."""
        blob = self.read_bytes(*parts)
        try:  # ParquetFile, not pq.read_table (a dataset per file): a sweep's report reads ~20,000 small files
            return pq.ParquetFile(pa.BufferReader(blob)).read(use_threads=False)
        except (pa.ArrowInvalid, OSError) as e:
            raise DamagedFile(self.uri(*parts), str(e), parts) from None

    def quarantine(self, *parts: str) -> str:
        """Move a damaged file of a sweep aside, to sweeps/<id>/quarantine/<folder>/<name>, keeping its
        bytes for a post-mortem; returns where it went. parts = ("sweeps", id, folder, name)."""
        dest = (*parts[:2], "quarantine", *parts[2:])
        self.write_bytes(self.read_bytes(*parts), *dest)
        self.rm(*parts)
        return self.uri(*dest)


# A trial's evaluations: the final one (its result) and those during training, apart (evaluation_file).
EVALUATIONS, EVAL_EVERY = "evaluations", "eval_every"


def evaluation_file(trial_id: str, step: int | None = None) -> tuple[str, str]:
    """(folder, name) of a trial's final evaluation (step None) or of one during training at `step`."""
    return (EVALUATIONS, f"{trial_id}.parquet") if step is None else (EVAL_EVERY, f"{trial_id}-{step:09d}.parquet")


def is_final_evaluation(name: str) -> bool:
    """Whether a file of evaluations/ is a final evaluation, not <trial>-<step>.parquet (an older layout's
    eval_every file): trial ids are hex, so a final file's name has no dash."""
    return "-" not in name.rsplit(".", 1)[0]


def read_evaluations(storage: "Storage", sweep_id: str) -> pa.Table | None:
    """A sweep's evaluations, final and during training, with a `final` column telling them apart (the
    files' schema is EVALUATIONS, without it); None if there are none."""
    base = ("sweeps", sweep_id)
    parts = [(storage.read_table(*base, EVALUATIONS, keep=is_final_evaluation), True),
             (storage.read_table(*base, EVALUATIONS, keep=lambda n: not is_final_evaluation(n)), False),  # older
             (storage.read_table(*base, EVAL_EVERY), False)]
    tables = [t.append_column("final", pa.array([final] * t.num_rows, pa.bool_())) for t, final in parts
              if t is not None]
    return pa.concat_tables(tables, promote_options="default") if tables else None


class DamagedFile(UserError, ValueError):
    """A stored file that cannot be read back (truncated, overwritten): the message names it."""

    hint = "re-running its sweep (gansweep run CONFIG --sweep-id SWEEP_ID) moves it to quarantine/ and regenerates it"

    def __init__(self, uri: str, why: str, parts: tuple[str, ...] = ()):
        super().__init__(f"damaged file {uri}: {why}")
        self.uri, self.parts = uri, parts


class BackgroundWriter:
    """Storage writes off the training hot path: one job at a time, in submission order.

    The caller serialises what a job writes (bytes, row lists) before submitting, so training can
    go on while the job uploads. At most one job is in flight: submit() first waits for the previous
    one, so a slow store slows training down rather than piling checkpoints up in memory, and a
    failed job's error surfaces on the next submit() or on drain().
    """

    def __init__(self):
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gansweep-writer")
        self._last = None

    def submit(self, fn, *args) -> None:
        self.drain()
        self._last = self._pool.submit(fn, *args)

    def drain(self) -> None:
        """Wait for the job in flight; re-raise its error."""
        last, self._last = self._last, None
        if last is not None:
            last.result()
