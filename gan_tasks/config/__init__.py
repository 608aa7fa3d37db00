"""Config: a sweep YAML -> frozen, typed models -> one TrialConfig per grid point, torch-free.

Validation happens here, before any Ray or Prefect work (`gansweep validate` runs only this package
and the registries' metadata in gan_tasks/methods/catalog.py and gan_tasks/data/datasets.py): an
unknown key, a wrong type, an unknown registered name or a combination that cannot run is a
ConfigError naming the field and the valid values. This room sits above methods/ and data/ and below
training/ and evaluation/: it imports neither of those.

- entries.py: loss / optimizer / dataset / model entries, train, resources, limits, evaluation settings
- sweep.py: the grid and the whole SweepConfig with its cross-field checks; checks.py: size and
  duplicate checks; eval_options.py: extractor / classifier names; early_stop.py, published.py, search.py
  (sampled settings per cell: docs/search.md): blocks;
  scores.py: every ranked metric's direction and bounds
- trial.py: TrialConfig (its hash is the trial id) and the grid's expansion; labels.py: a cell's label
- load.py: strict YAML (strict_yaml.py), --set overrides, error formatting

The names below are this package's public surface; import them from `gan_tasks.config`.
"""
from gan_tasks.config.entries import (ConfigError, DatasetEntry, EvalConfig, Limits, LossEntry, ModelEntry,  # noqa: F401
                                      OptimizerEntry, Resources, TrainConfig)
from gan_tasks.config.labels import cell_label, cell_parts  # noqa: F401
from gan_tasks.config.load import (apply_overrides, check_sweep_id, default_sweep_id, dump_config,  # noqa: F401
                                   extends, load_config, parse_config, resolve_dataset, same_trials, utc_stamp)
from gan_tasks.config.sweep import Grid, SweepConfig  # noqa: F401
from gan_tasks.config.trial import TrialConfig, expand_grid, resolved_cells, resolved_common, trial_id  # noqa: F401
from gan_tasks.methods.trick_settings import Tricks  # noqa: F401
