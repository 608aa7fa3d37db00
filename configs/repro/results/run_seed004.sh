#!/usr/bin/env bash
# Regenerates configs/repro/results/seed004-mnist-is.md: seed 004's MNIST Inception-score table
# (DCGAN vs WGAN vs WGAN-GP, dcgan-28, its Table 1 hyper-parameters) at a reduced CPU budget:
# STEPS generator steps (default 600 = 4 % of its 15,000), SEEDS seeds, IS over FID_SAMPLES samples
# with the in-domain MNIST classifier (so compare the ordering, not the values). Run from the repo root.
set -euo pipefail
STEPS=${STEPS:-600}
SEEDS=${SEEDS:-[0,1]}
FID_SAMPLES=${FID_SAMPLES:-2000}
STORE=${STORE:-gansweep-results}
MNIST=${MNIST:-../shared/data/mnist}
[ -e "$STORE/datasets/mnist/current.json" ] || gansweep data upload mnist "$MNIST" --storage "$STORE"
[ -e "$STORE/evaluators/mnist/current.json" ] || gansweep evaluator train mnist --storage "$STORE"
id=repro-seed004-$STEPS
gansweep run configs/repro/seed004-mnist-is.yaml --storage "$STORE" --sweep-id "$id" \
  --set train.steps=$STEPS --set "grid.seed=$SEEDS" --set train.checkpoint_every=$STEPS \
  --set resources.gpus_per_trial=0 --set resources.cpus_per_trial=1 \
  --set evaluation.fidelity_samples=$FID_SAMPLES --set "evaluation.image_metrics=[isc]" || true
gansweep published "$id" --storage "$STORE" --out configs/repro/results/seed004-mnist-is.md
