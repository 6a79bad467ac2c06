#!/usr/bin/env bash
# Regenerates the tables and plots of docs/RESULTS.md: sweeps (runs already done are skipped) then reports that
# replace the <!-- report:NAME --> blocks of the page, keeping its prose.
#   RUNS=/tmp/results WORKERS=2 bash docs/results.sh [SECTION ...]     (default: every section, in this order)
# Sections: bre-toy tune protocol-ring8 protocol-grid25 modereg-toy
# Seeds 0–9 are reported; seeds 100+ are only used to choose settings (section tune).
set -euo pipefail
cd "$(dirname "$0")/.."
source docs/results-common.sh
EXTRAS=regions,div/patterns,div/entropy

bre_toy() {      # 1. baseline vs BRE on the paper's toy, seeds 0–9: the presets as they are, and BRE at the weight
                 #    chosen on seeds 100–105 (section tune)
  for p in bre-toy bre-toy-bre; do sweep --preset "$p" --seeds 10 --out "$RUNS/bre-toy"; done
  sweep --preset bre-toy-bre --seeds 10 --grid reg.bre.weight=0.1 --out "$RUNS/bre-toy"
  report "$RUNS/bre-toy" --section bre-toy --at 500,1000,1500,final --extras "$EXTRAS" \
    --pair bre-toy,bre-toy-bre --pair bre-toy,bre-toy-bre+reg.bre.weight=0.1
}

TUNE=(--seeds 6 --seed 100 --set viz.metrics_every=250)
tune() {         # the settings the paper leaves open, one at a time, on seeds 100–105 only
  local out="$RUNS/tune"
  for p in bre-toy bre-toy-bre; do sweep --preset "$p" "${TUNE[@]}" --out "$out"; done
  sweep --preset bre-toy-bre "${TUNE[@]}" --grid reg.bre.weight=0.1,0.3 --out "$out"
  for g in nets.latent_dim=8 optim.batch_size=64 optim.iters=1000; do
    for p in bre-toy bre-toy-bre; do sweep --preset "$p" "${TUNE[@]}" --grid "$g" --out "$out"; done
  done
  sweep --preset bre-toy-bre "${TUNE[@]}" --grid reg.bre.layers=all_but_first_last --out "$out"
  sweep --preset bre-toy-bre "${TUNE[@]}" --grid 'reg.bre.samples=["fake"]' --out "$out"
  sweep --preset bre-toy-bre "${TUNE[@]}" --grid reg.bre.schedule=constant --out "$out"
  local pairs=(--pair bre-toy,bre-toy-bre)
  for g in nets.latent_dim=8 optim.batch_size=64 optim.iters=1000; do
    pairs+=(--pair "bre-toy+$g,bre-toy-bre+$g")
  done
  for g in reg.bre.weight=0.1 reg.bre.weight=0.3 reg.bre.layers=all_but_first_last 'reg.bre.samples=[fake]' \
           reg.bre.schedule=constant; do
    pairs+=(--pair "bre-toy,bre-toy-bre+$g")
  done
  report "$out" --section tune --at 500,1000,final --no-plots --extras regions "${pairs[@]}"
}

SHORT=(--set optim.iters=2000)    # the protocol's length for ring8 and grid25 alike: it fits the 2-hour budget
GRID25=("${GRID25_DATA[@]}" "${SHORT[@]}")
protocol_ring8() {   # 2. one network (3×128 MLPs) and length (2000 steps) for every method, seeds 0–9
  local out="$RUNS/protocol-ring8"
  for p in ring8 ring8-bre; do sweep --preset "$p" --seeds 10 --out "$out"; done
  for t in "${TECHNIQUES[@]}"; do sweep --preset "ring8-$t" --seeds 10 --out "$out"; done
  report "$out" --section protocol-ring8 --at 500,1000,final --pair ring8,ring8-bre --extras regions
}
protocol_grid25() {  # the same methods on grid25, also 2000 steps (the grid25 preset itself trains 4000):
                     # each ring8-<technique> with grid25's data
  local out="$RUNS/protocol-grid25"
  for p in grid25 grid25-bre; do sweep --preset "$p" "${SHORT[@]}" --seeds 10 --out "$out"; done
  for t in "${TECHNIQUES[@]}"; do sweep --preset "ring8-$t" --name "grid25-$t" "${GRID25[@]}" --seeds 10 --out "$out"; done
  report "$out" --section protocol-grid25 --at 500,1000,final --pair grid25,grid25-bre --extras regions
}
modereg_toy() {      # 3. Che et al.'s toy with and without their regularizers
  for p in modereg-toy modereg-toy-reg; do sweep --preset "$p" --seeds 10 --out "$RUNS/modereg-toy"; done
  report "$RUNS/modereg-toy" --section modereg-toy --at 1000,final --pair modereg-toy,modereg-toy-reg --extras regions
}

run_sections results.sh "bre-toy tune protocol-ring8 protocol-grid25 modereg-toy" "$@"
