"""`gansweep evaluator ...`: in-domain feature extractors for image metrics."""
from __future__ import annotations

import typer

from flows.cli.common import DEFAULT_STORAGE, EndpointOpt, StorageOpt, console, storage_at
from gan_tasks.errors import UserError

evaluator_app = typer.Typer(no_args_is_help=True, help="In-domain feature extractors for image metrics.")


@evaluator_app.command("train")
def train(dataset: str, storage: StorageOpt = DEFAULT_STORAGE, s3_endpoint_url: EndpointOpt = None,
          epochs: int = typer.Option(3, min=1, help="passes over the training split")) -> None:
    """Train DATASET's classifier (mnist, fashion-mnist) and store it under its content hash."""
    from gan_tasks.evaluation.classifier import CLASSIFIER_DATASETS, TrainSpec, check_dataset, train_and_store

    check_dataset(dataset)
    st = storage_at(storage, s3_endpoint_url)
    meta = train_and_store(st, dataset, TrainSpec(epochs=epochs))
    need = CLASSIFIER_DATASETS.get(dataset)
    console.print(f"{dataset} classifier {meta['hash']}: test accuracy {meta['test_accuracy']:.2%} "
                  f"(required {need:.0%}) in {meta['train_seconds']:.0f} s; stored at "
                  f"{st.uri('evaluators', dataset, meta['hash'] + '.pt')}", highlight=False)
    if meta["test_accuracy"] < need:
        raise UserError(f"accuracy {meta['test_accuracy']:.2%} is below the required {need:.0%}", exit_code=1)


def register(app: typer.Typer) -> None:
    app.add_typer(evaluator_app, name="evaluator")
