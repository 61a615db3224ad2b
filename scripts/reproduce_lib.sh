# Sourced by scripts/reproduce_<name>.sh: set up .venv, then `reproduce EXPERIMENT CONFIG
# REAL_VARIANT "$@"` runs configs/CONFIG.py's default variant (the synthetic study) into
# runs/reproduce_EXPERIMENT, or with --real its REAL_VARIANT (the published data, read from the
# dataset's manual folder) into runs/reproduce_EXPERIMENT_REAL_VARIANT, then writes the results
# page docs/results/<that name>.md. Every other argument goes to soundjax (e.g.
# --config.data.manual_dir=/path). Re-running continues: trained models are restored from their
# checkpoints and the evaluation is redone.
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh" ""

reproduce() {
  local experiment="$1" config="$2" real="$3" variant="" name="$1" arg
  shift 3
  local passed=()
  for arg in "$@"; do
    if [ "$arg" = "--real" ]; then
      variant="$real" name="${experiment}_${real}"
    else
      passed+=("$arg")
    fi
  done
  local workdir="runs/reproduce_${name}"
  local command=(soundjax "--config=configs/${config}.py${variant:+:$variant}"
                 "--workdir=${workdir}" "${passed[@]}")
  local start=$SECONDS
  echo "${command[*]}"
  "${command[@]}"
  echo "$0: the run took $((SECONDS - start)) s; writing its page."
  python scripts/results_page.py --experiment "$experiment" --workdir "$workdir" --name "$name" \
    --command "$0${*:+ $*} (runs: ${command[*]})"
}
