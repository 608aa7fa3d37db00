#!/usr/bin/env bash
# Regenerates configs/repro/results/pacgan-table1-{ring,grid}.md: PacGAN Table 1 at a reduced budget
# (2 CPU cores): GAN vs PacGAN2, 3 seeds, STEPS generator steps (default 5000 = 1.25 % of the paper's
# 400,000), quality measured every 1,000 steps. Run from the repository root.
# PROTOCOL=alternating (the committed results) trains as gansweep did before the configs took PacGAN's own
# protocol: alternating D/G updates, the batch in samples. PROTOCOL=paper uses the configs' simultaneous
# updates and batch in packed groups (not yet measured here). The markdown says which ("Trained with:").
set -euo pipefail
STEPS=${STEPS:-5000}
PROTOCOL=${PROTOCOL:-alternating}
if [ "$PROTOCOL" = alternating ]; then
  PROTO=(--set train.update=alternating --set train.batch_unit=samples); SUFFIX=""
else
  PROTO=(); SUFFIX=-paper
fi
STORE=${STORE:-gansweep-results}
for table in ring grid; do
  id=repro-table1-$table-$STEPS$SUFFIX
  gansweep run configs/repro/pacgan-table1-$table.yaml --storage "$STORE" --sweep-id "$id" \
    --set train.steps=$STEPS --set "grid.seed=[0,1,2]" --set "grid.tricks=[{},{pac: 2}]" \
    --set evaluation.eval_every=1000 "${PROTO[@]}" || true   # a trial that did not complete is reported, not hidden
  gansweep published "$id" --storage "$STORE" --out configs/repro/results/pacgan-table1-$table$SUFFIX.md
done
