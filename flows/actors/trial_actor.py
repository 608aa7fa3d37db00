"""Ray actors own a trial's device state. The Prefect task that drives one only waits and reports."""
from __future__ import annotations

import importlib
import os
import threading

import ray


def _adopt(*cfgs) -> None:
    """The plugin entries these trials use, registered where only their code was shipped (a cluster node)."""
    from gan_tasks.config.plugins import adopt

    for c in cfgs:
        adopt(c.plugins)


def _device() -> str:
    import torch

    # Ray sets CUDA_VISIBLE_DEVICES to the GPUs it assigned; no assignment means CPU.
    if ray.get_gpu_ids() and torch.cuda.is_available():
        return "cuda:0"
    return "cpu"


@ray.remote
class TrialActor:
    """Trains one trial. Threaded (max_concurrency=2) so progress() answers while train() runs."""

    def __init__(self, num_threads: int):
        import torch

        torch.set_num_threads(max(1, num_threads))  # one trial must not oversubscribe its CPUs
        import gan_tasks.training.trial  # noqa: F401 - import now, while the sweep prepares, not in the first trial
        from gan_tasks.training import preempt

        # SIGTERM (a cluster node's spot warning): running trials checkpoint and return `preempted`. Not in a
        # local run's own Ray (its processes carry GANSWEEP_RUN): there SIGTERM is the run's Ctrl-C, which marks
        # its trials interrupted (flows/guard/interrupt.py).
        if "GANSWEEP_RUN" not in os.environ:
            preempt.install()
        # The first torch optimiser imports torch._dynamo (seconds), else paid by each actor's first trial.
        # Imported beside the sweep's start-up instead (a trial that needs it sooner waits on the import lock).
        threading.Thread(target=importlib.import_module, args=("torch._dynamo",), daemon=True).start()
        self.progress_ = (0, 0, 0.0)

    def pid(self) -> int:
        return os.getpid()

    def peak_rss_mb(self) -> float:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB

    def progress(self) -> tuple[int, int, float]:
        return self.progress_

    def _on_progress(self, step: int, steps: int, rate: float) -> None:
        self.progress_ = (step, steps, rate)

    def train(self, cfg, storage, sweep_id: str, ev=None, es=None, evaluate: bool = False) -> dict:
        """Train (or resume) one trial; with `evaluate`, a trial that ends done (completed or stopped)
        is evaluated here at once, in the same call: no second task run, no second round trip, its
        data still cached in this process. An evaluation error is returned in `evaluation_error`."""
        from gan_tasks.training import preempt

        with preempt.running():  # after a SIGTERM the process exits once this has returned
            return self._train(cfg, storage, sweep_id, ev, es, evaluate)

    def _train(self, cfg, storage, sweep_id: str, ev, es, evaluate: bool) -> dict:
        from gan_tasks.training.trial import run_trial

        self.progress_ = (0, 0, 0.0)  # a pooled actor must not report its previous trial's progress
        _adopt(cfg)
        node = ray.get_runtime_context().get_node_id()
        hook = None
        if ev is not None and ev.eval_every:  # quality-over-steps rows in eval_every/
            from gan_tasks.evaluation.evaluate import on_eval

            hook = on_eval(storage, sweep_id, ev, es)  # es: early_stop rungs, decided in the hook
        row = run_trial(cfg, storage, sweep_id, _device(), self._on_progress, node, hook,
                        ev.eval_every if hook else 0)
        from gan_tasks.data.schema import DONE

        if evaluate and ev is not None and row["status"] in DONE:
            try:
                self.evaluate(cfg, storage, sweep_id, ev)
            except Exception as e:  # noqa: BLE001 - the task marks the trial failed, the sweep goes on
                row = {**row, "evaluation_error": f"{type(e).__name__}: {e}"}
        return row

    def train_packed(self, cfgs: list, storage, sweep_id: str) -> list[dict]:
        """Train (or resume) one cell's seeds packed; after a SIGTERM as train()."""
        from gan_tasks.training import preempt
        from gan_tasks.training.pack_run import run_packed

        self.progress_ = (0, 0, 0.0)
        _adopt(*cfgs)
        node = ray.get_runtime_context().get_node_id()
        with preempt.running():
            return run_packed(cfgs, storage, sweep_id, _device(), self._on_progress, node)

    def evaluate(self, cfg, storage, sweep_id: str, ev) -> list[dict]:
        from gan_tasks.evaluation.evaluate import evaluate_trial

        _adopt(cfg)
        return evaluate_trial(cfg, storage, sweep_id, ev, _device())


def make_actor(gpus: float, cpus: float, restarts: int = 2, name: str | None = None, custom: dict | None = None):
    """An actor with the trial's resource request (custom: Ray custom resources, resources.custom); Ray
    restarts it (and retries the call) if its process dies, and the retried train() resumes from the latest
    checkpoint. A named one is the existing actor of that name, if there is one."""
    named = {"name": name, "get_if_exists": True} if name else {}
    extra = {"resources": dict(custom)} if custom else {}
    return TrialActor.options(num_gpus=gpus, num_cpus=cpus, max_concurrency=2, max_restarts=restarts,
                              max_task_retries=restarts, **named, **extra).remote(int(cpus) or 1)
