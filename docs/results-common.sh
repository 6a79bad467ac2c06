# Sourced by docs/results.sh and docs/results-full.sh (from the repository's root): their settings, the sweep and
# report steps, the protocol's data and technique rows, and the loop over the sections asked for.
RUNS=${RUNS:-/tmp/results}
WORKERS=${WORKERS:-2}
PAGE=${PAGE:-docs/RESULTS.md}
PY=${PY:-python}
# DEVICE=cuda (or cuda:N) trains the sweeps there; default: the CPU
sweep() {       # exit status 1 = some runs failed (they are listed in the report): go on; anything else: stop
  local rc=0
  $PY -m toyviz sweep --workers "$WORKERS" ${DEVICE:+--device "$DEVICE"} "$@" || rc=$?
  if [ "$rc" -gt 1 ]; then exit "$rc"; fi
}
report() { $PY -m toyviz report "$@" --into "$PAGE" > /dev/null; }
GRID25_DATA=(--set data.kind=grid --set data.std=0.05 --set 'viz.extent=[-5.5,5.5,-5.5,5.5]')
TECHNIQUES=(fm mbd ha smooth wgan-gp unrolled pac4 modereg mdgan)

run_sections() {  # run_sections SCRIPT "DEFAULT SECTIONS" [SECTION ...]: each section's function, timed
  local script=$1 defaults=$2 s one start
  shift 2
  for s in "${@:-$defaults}"; do
    for one in $s; do
      if ! declare -F "${one//-/_}" > /dev/null; then
        echo "$script: unknown section '$one' (sections: $defaults)" >&2
        exit 2
      fi
      start=$(date +%s)
      "${one//-/_}"
      echo "$script: section $one took $(( $(date +%s) - start )) s" >&2
    done
  done
}
