#!/usr/bin/env bash
# The converged tables of docs/RESULTS.md (sections "plateau", "converged-*", "pacgan-*"): runs long enough that
# the methods' HQ and modes have stopped improving, so a verdict speaks of the method, not of the run length.
#   RUNS=/tmp/results-full WORKERS=2 bash docs/results-full.sh [SECTION ...]   (default: every section, in order)
# Sections: plateau converged-ring8 converged-grid25 pacgan rescue
#   ROWS="ring8 ring8-bre ..." limits the converged sections to some rows (default: every protocol row);
#   LENGTH=N sets the converged length (default 10,000: the plateau's), SEEDS=N its seeds (0..N-1, default 10:
#   rerun with more to add seeds, the ones done are skipped); PACGAN_STEPS=N the PacGAN fraction
#   (default 5,000), PACGAN_DATA its mixtures (default "ring8 grid25"), PACGAN_PACKS its packed rows (default "4";
#   the full protocol: "2 3 4").
# Seeds 100–103 choose the length (section plateau); seeds 0–9 are reported.
#
# Cost = rows × seeds × steps ÷ seed-steps per second. Measured on this 2-core machine (2026-12-04) for the run that
# made RESULTS.md's section 3:
#   plateau            4 configs × 4 seeds × 20,000 =   320,000 seed-steps:  1,291 s (about 6 min of it paused)
#   converged-ring8    6 rows × 10 seeds × 10,000   =   600,000 seed-steps:  1,806 s  } about 330 seed-steps/s:
#   converged-grid25   6 rows × 10 seeds × 10,000   =   600,000 seed-steps:  1,711 s  } batched and separate rows
#   pacgan (ring8)     2 rows × 10 seeds × 5,000    =   100,000 steps:       1,605 s (about 60 steps/s: separate
#                                                                             runs, G 4×400 BN, D 3×200 maxout-5)
#   then, added with ROWS / PACGAN_DATA (separate runs):
#   grid25-mdgan       1 row × 10 seeds × 10,000    =   100,000 seed-steps:  2,302 s (about 10 min of it paused)
#   ring8-mdgan        1 row × 10 seeds × 10,000    =   100,000 seed-steps:  1,066 s
#   pacgan (grid25)    2 rows × 10 seeds × 5,000    =   100,000 steps:       1,621 s (4 runs done before)
#   grid25-ha, ring8-ha 2 rows × 10 seeds × 10,000  =   200,000 seed-steps:    651 s
#   then, as seed batches (2026-12-05; batching now takes these three techniques):
#   ring8-unrolled     1 row × 10 seeds × 10,000    =   100,000 seed-steps:  1,677 s (seed 0 resumed at 7,300 steps)
#   ring8-mbd          1 row × 10 seeds × 10,000    =   100,000 seed-steps:  1,281 s (about 78 seed-steps/s)
#   ring8-wgan-gp      1 row × 10 seeds × 10,000    =   100,000 seed-steps:  1,047 s (about 96 seed-steps/s)
#   grid25-wgan-gp     1 row × 6 seeds × 10,000     =    60,000 seed-steps:    924 s (seeds 0–5; tests beside it)
#   grid25-mbd         1 row × 6 seeds × 10,000     =    60,000 seed-steps:    725 s (seeds 0–5)
#   grid25-unrolled    1 row × 6 seeds × 10,000     =    60,000 seed-steps:  1,071 s (seeds 0–5)
#   then SEEDS=10 added seeds 6–9 of these three (2026-12-05): minibatch discrimination 617 s, unrolled D 794 s,
#   WGAN-GP not timed (stopped with a session and resumed from its checkpoints).
#   rescue             8 rows × 4 seeds × 10,000    =   320,000 seed-steps:  4,266 s (2026-12-05, seed batches;
#                                                                             WGAN-GP rows 433–484 s, unrolled D 741–749 s)
#   The whole script, every row on 10 seeds, is about 6 h 40 min on these 2 cores.
#   PacGAN's protocol at its full length, PACGAN_STEPS=400000 PACGAN_PACKS="2 3 4" (8 rows × 10 seeds × 400,000
#   steps = 32 M steps), is about 250 core-hours here; DEVICE=cuda trains the sweeps on a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-/tmp/results-full}
source docs/results-common.sh
LENGTH=${LENGTH:-10000}
SEEDS=${SEEDS:-10}
PACGAN_STEPS=${PACGAN_STEPS:-5000}
PLATEAU_STEPS=${PLATEAU_STEPS:-20000}
PACGAN_DATA=${PACGAN_DATA:-ring8 grid25}
PACGAN_PACKS=${PACGAN_PACKS:-4}

# one protocol row: the ring8 presets as they are; on grid25 the same overrides applied to grid25's data
row() {  # row DATASET NAME EXTRA-ARGS...
  local data=$1 name=$2; shift 2
  case "$data:$name" in
    ring8:*) sweep --preset "$name" "$@" ;;
    grid25:grid25|grid25:grid25-bre) sweep --preset "$name" "$@" ;;
    grid25:*) sweep --preset "ring8-${name#grid25-}" --name "$name" "${GRID25_DATA[@]}" "$@" ;;
  esac
}

PLATEAU=(--seeds 4 --seed 100 --set optim.iters="$PLATEAU_STEPS" --set viz.metrics_every=$((PLATEAU_STEPS / 20)))
plateau() {      # 1. how long is long enough: the plain GAN and the best 2,000-step method, seeds 100–103
  local out="$RUNS/plateau"
  for n in ring8 ring8-smooth; do row ring8 "$n" "${PLATEAU[@]}" --out "$out/ring8"; done
  for n in grid25 grid25-smooth; do row grid25 "$n" "${PLATEAU[@]}" --out "$out/grid25"; done
  local at=$((PLATEAU_STEPS / 10)),$((PLATEAU_STEPS / 4)),$((PLATEAU_STEPS / 2)),$((PLATEAU_STEPS * 3 / 4)),final
  report "$out/ring8" --section plateau-ring8 --at "$at" --extras regions
  report "$out/grid25" --section plateau-grid25 --at "$at" --extras regions
}

converged() {    # 2. every protocol row at LENGTH steps, seeds 0..SEEDS-1 (seed batches where a technique allows)
  local data=$1 out="$RUNS/converged-$1" names
  if [ -n "${ROWS:-}" ]; then read -r -a names <<< "$ROWS"
  else names=("$data" "$data-bre"); for t in "${TECHNIQUES[@]}"; do names+=("$data-$t"); done; fi
  for n in "${names[@]}"; do
    case "$n" in "$data"*) row "$data" "$n" --seeds "$SEEDS" --set optim.iters="$LENGTH" \
                             --set viz.metrics_every=$((LENGTH / 10)) --out "$out" ;; esac
  done
  report "$out" --section "converged-$data" --at $((LENGTH / 5)),$((LENGTH / 2)),final --pair "$data,$data-bre" --extras regions
  # section 2 (docs/results.sh trains it as runs of 2,000 steps) read off these runs at step 2,000: the same
  # numbers, as the learning rate is constant (report --until), when these runs evaluated step 2,000. No plots:
  # at these runs' evaluations (every LENGTH/10 steps) a curve to step 2,000 has two or three points.
  if [ "$LENGTH" -ge 2000 ] && [ $((2000 % (LENGTH / 10))) -eq 0 ]; then
    report "$out" --until 2000 --section "protocol-$data" --at 1000,final --pair "$data,$data-bre" --extras regions \
      --no-plots
  fi
}
converged_ring8() { converged ring8; }
converged_grid25() { converged grid25; }

pacgan() {       # 3. PacGAN's own protocol (METHODS §8) for PACGAN_STEPS of its 400,000 steps, seeds 0–9
  local out="$RUNS/pacgan" d k
  for d in $PACGAN_DATA; do
    sweep --preset "pacgan-$d" --seeds 10 --set optim.iters="$PACGAN_STEPS" \
      --set viz.metrics_every=$((PACGAN_STEPS / 10)) --out "$out/$d"
    for k in $PACGAN_PACKS; do
      sweep --preset "pacgan-$d-pac$k" --seeds 10 --set optim.iters="$PACGAN_STEPS" \
        --set viz.metrics_every=$((PACGAN_STEPS / 10)) --out "$out/$d"
    done
    report "$out/$d" --section "pacgan-$d" --at $((PACGAN_STEPS / 2)),final --pair "pacgan-$d,pacgan-$d-pac4" \
      --extras regions
  done
}

RESCUE=(--seeds 4 --seed 100 --set optim.iters="$LENGTH" --set viz.metrics_every=$((LENGTH / 10)))
SLOW=(--set optim.lr_g=1e-4 --set optim.lr_d=1e-4)
rescue() {       # 4. WGAN-GP and unrolled D fail at the protocol's settings: do their authors' own settings rescue
                 #    them? Adam at 1e-4 (WGAN-GP's paper's and PacGAN's rate) for both; for WGAN-GP also the
                 #    penalty weight of its authors' toy code, λ = 0.1. A question of settings: seeds 100–103
  local out="$RUNS/rescue" d t
  for d in ring8 grid25; do
    for t in wgan-gp unrolled; do
      row "$d" "$d-$t" --name "$d-$t-lr1e-4" "${RESCUE[@]}" "${SLOW[@]}" --out "$out/$d"
    done
    row "$d" "$d-wgan-gp" --name "$d-wgan-gp-gp0.1" "${RESCUE[@]}" --set reg.gp_weight=0.1 --out "$out/$d"
    row "$d" "$d-wgan-gp" --name "$d-wgan-gp-gp0.1-lr1e-4" "${RESCUE[@]}" "${SLOW[@]}" --set reg.gp_weight=0.1 \
      --out "$out/$d"
    report "$out/$d" --section "rescue-$d" --at $((LENGTH / 5)),$((LENGTH / 2)),final --extras regions
  done
}

run_sections results-full.sh "plateau converged-ring8 converged-grid25 pacgan rescue" "$@"
