"""The Parquet schemas of a sweep's outputs: written down once, used by every writer, tested."""
import pyarrow as pa

_TS = pa.timestamp("us", tz="UTC")
# Statuses of a finished trial: a re-run skips it, it is evaluated, it is no failure. `stopped`: cut
# short by early_stop (gan_tasks/config/early_stop.py), its rows and checkpoint kept.
DONE = ("completed", "stopped")

TRIALS = pa.schema([
    ("sweep_id", pa.string()), ("trial_id", pa.string()), ("loss", pa.string()), ("optimizer", pa.string()),
    ("seed", pa.int64()), ("dataset", pa.string()), ("model", pa.string()),
    # running | paused (at an early_stop rung, decide: cohort) | completed | stopped | diverged | failed | interrupted
    # | preempted (its node's SIGTERM: checkpointed and left; the sweep resumes it on another node)
    ("status", pa.string()),
    ("steps", pa.int64()),  # generator steps done
    ("wall_seconds", pa.float64()), ("started_at", _TS), ("finished_at", _TS),
    ("error", pa.string()),  # "" unless diverged/failed
    ("device", pa.string()),  # cpu | cuda:N
    ("node", pa.string()),  # the Ray node id the trial trained on ("" outside Ray)
    ("config_json", pa.string()),  # the resolved TrialConfig; its sha256[:12] is trial_id
    # Everything but the seed, e.g. "wgan-gp/adam(lr 0.0001, betas 0.5,0.9)/label_smoothing=0.1"
    # (config.cell_label): group seeds by it. Null in rows written before it existed.
    ("cell", pa.string()),
    # Which data the trial trained on: the id of a dataset added with `gansweep data add` or uploaded with
    # `gansweep data upload` (datasets/<dataset>/<id>/; a two-domain upload's manifest hash), or a 2-D
    # mixture's parameters hash (datasets/<dataset>/<hash>/). Null in rows written before it existed.
    ("dataset_id", pa.string()),
    # The plugin entries the trial used (part of its trial_id), a JSON list of {"kind", "name", "dist",
    # "version", "code_hash"}; "[]" for built-ins only, null in rows written before it existed.
    ("plugins", pa.string()),
    # Where and from which step it trained (gan_tasks/training/rows.py: history), one entry per start: the Ray
    # node ids (a node lost or preempted mid-trial: the one it resumed on follows) and the step each start
    # resumed from (0: from scratch). Null in rows written before they existed.
    ("nodes", pa.list_(pa.string())), ("resumed_from", pa.list_(pa.int64())),
    ("preemptions", pa.int64()),  # SIGTERMs (spot warnings) it checkpointed and left on; null in older rows
])

METRICS = pa.schema([
    ("sweep_id", pa.string()), ("trial_id", pa.string()), ("step", pa.int64()),
    ("loss_d", pa.float64()), ("loss_g", pa.float64()),
    ("penalty", pa.float64()),  # gradient penalty term (wgan-gp, dragan), NaN otherwise
    ("d_real", pa.float64()), ("d_fake", pa.float64()),  # mean raw D score on the batch
    ("grad_norm_d", pa.float64()), ("grad_norm_g", pa.float64()),
    ("wasserstein", pa.float64()),  # critic's W estimate E D(x) - E D(G(z)) for wgan*, NaN otherwise
    ("began_k", pa.float64()),  # BEGAN's equilibrium control k_t, NaN for other losses
    ("convergence", pa.float64()),  # BEGAN's M_global = L(x) + |gamma L(x) - L(G(z))|, NaN otherwise
    # CycleGAN's cycle-consistency and identity terms (before their weights); null for other programs
    ("cycle", pa.float64()), ("identity", pa.float64()),
])

# evaluations/<trial>.parquet: a trial's final evaluation; eval_every/<trial>-<step>.parquet: those during
# training. A seed's result is a completed trial's final one (gan_tasks/evaluation/seeds.py).
EVALUATIONS = pa.schema([
    ("sweep_id", pa.string()), ("trial_id", pa.string()),
    ("step", pa.int64()),  # generator step the metric was measured at
    ("metric", pa.string()), ("value", pa.float64()),
    ("extractor", pa.string()),  # feature extractor of image metrics ("classifier", "inception-v3"), "" otherwise
    ("extractor_hash", pa.string()),  # content hash of its weights, "" otherwise
    # How an image metric (IS, FID, KID, precision/recall) was made, as JSON: extractor, weights_hash,
    # feature_layer, torch_fidelity, resize, n_real, n_fake, reference_split, reference_seed, dataset_id,
    # g_ema (gan_tasks/evaluation/provenance.py); "" for other metrics, null in rows written before it existed.
    ("provenance", pa.string()),
    ("provenance_key", pa.string()),  # its sha256[:16]: values are comparable only under one key
])

RANKINGS = pa.schema([  # sweeps/<id>/rankings/rankings.parquet: one row per (loss, optimizer, metric)
    ("sweep_id", pa.string()), ("loss", pa.string()), ("optimizer", pa.string()), ("metric", pa.string()),
    ("seeds", pa.int64()),  # completed seeds with a final value of this metric (gan_tasks/evaluation/seeds.py)
    ("seeds_failed", pa.int64()),  # seeds of the cell that diverged, failed or were interrupted (never a value)
    ("mean", pa.float64()), ("std", pa.float64()),  # over seeds, std with ddof 1 (NaN for one seed)
    # 95 % CI of the mean (Student t) cut to the metric's bounds; NaN with one seed or no spread (note says so)
    ("ci95_low", pa.float64()), ("ci95_high", pa.float64()),
    ("median", pa.float64()), ("best_seed", pa.int64()), ("best_value", pa.float64()),
    ("higher_is_better", pa.bool_()),
    ("rank", pa.int64()),  # 1 = the best cell by mean for this metric
    # Against the best cell: exact permutation test (<= 5 seeds on a side or no spread) or Welch's t-test
    # (NaN: the best itself, or < 2 seeds), and that p adjusted by Holm over all pairs of the metric's cells
    ("p_value", pa.float64()), ("p_adj", pa.float64()),
    ("significant", pa.bool_()),  # p_adj <= 0.05: worse than the best cell
    # every seed not completed ("diverged 1 of 3 seeds, stopped 1 of 3 seeds (early_stop)"), "no spread: ..."
    ("note", pa.string()),
    # The sweep config's `published:` table (gan_tasks/evaluation/published.py), null where no row matches the cell:
    ("published_row", pa.string()),  # the paper's row label, e.g. "PacGAN2"
    ("published_mean", pa.float64()), ("published_se", pa.float64()),  # its figure (s.e. over its runs)
    ("published_runs", pa.int64()),
    ("published_margin", pa.float64()),  # the equivalence margin the absolute verdict tests against
    ("budget_ratio", pa.float64()),  # our generator steps / the paper's
    ("verdict_absolute", pa.string()),  # agrees | differs | inconclusive (reason) | not comparable | not run
    ("verdict_ordering", pa.string()),  # reproduced | reversed (vs row) | not assessable (reason)
])
