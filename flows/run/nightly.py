"""The nightly deployment's entry point: a config path in, one sweep out, compared with last night."""
from __future__ import annotations

from prefect import flow

from flows.run.flow import sweep_flow
from gan_tasks.config import load_config


@flow(name="gansweep-nightly", log_prints=True)
def nightly(config_path: str, storage_url: str, s3_endpoint_url: str | None = None,
            ray_address: str | None = None, fail_on_regression: bool = True):
    """Validates the config, then runs sweep_flow as a subflow (sweep id = <name>-<UTC time>)."""
    from gan_tasks.data.storage import Storage

    # A bad file fails here, before any Ray work; `dataset: NAME` takes tonight's current id of NAME.
    sweep = load_config(config_path, (), Storage.parse(storage_url, s3_endpoint_url))
    return sweep_flow(sweep.model_dump(mode="json"), storage_url, None, ray_address, s3_endpoint_url,
                      fail_on_regression=fail_on_regression)
