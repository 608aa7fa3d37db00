#!/usr/bin/env bash
# Bring your own images, end to end: MNIST as a PNG folder -> gansweep data add -> a 64x64 DCGAN sweep
# with FID/KID (provenance in every row) -> data ls, the rankings with provenance.
# Usage: examples/own-images/run.sh [STORAGE] [N_IMAGES]   (from the repository root; ../shared/data/mnist)
set -euo pipefail
STORAGE=${1:-./gansweep-own-images}
N=${2:-3000}
GANSWEEP=${GANSWEEP:-gansweep}
HERE=$(dirname "$0")
PNG=$(mktemp -d)/mnist-png
"${PYTHON:-python}" "$HERE/export_pngs.py" ../shared/data/mnist "$PNG" --n "$N"
$GANSWEEP data add mnist-png "$PNG" --labels subfolders --size 64 --mode L --test-fraction 0.1 --storage "$STORAGE"
if ! $GANSWEEP data ls --storage "$STORAGE" | grep -q '^ *mnist '; then
  $GANSWEEP data upload mnist ../shared/data/mnist --storage "$STORAGE"   # what the classifier trains on
fi
$GANSWEEP evaluator train mnist --epochs "${EPOCHS:-3}" --storage "$STORAGE"
$GANSWEEP data ls --storage "$STORAGE"
$GANSWEEP run "$HERE/mnist64.yaml" --storage "$STORAGE" --sweep-id "${SWEEP_ID:-own-mnist64-demo}" "${@:3}"
"${PYTHON:-python}" "$HERE/show_rankings.py" "$STORAGE" "${SWEEP_ID:-own-mnist64-demo}"
