#!/usr/bin/env bash
# Issue #33, item 3: every paper claim re-run on sp-sw-har with every eligible subject a target, three seeds.
#
#   scripts/fidelity_reruns.sh [RESULTS] [STAGE...]
#
# RESULTS (default results-fidelity) is the store; it survives interruptions: run the same command again and every
# run continues where it stopped (--resume; the verified cache serves every job already done). Stages, in order:
#   a  the five runs (3 device folds, 2 age directions) without SMLDist: CRoP, DUET, TBFT, generic, fine-tuning
#   b  the same five runs with SMLDist only (its teacher and four students train on the population once per run and
#      seed: most of the compute); its summary reads only its own rows
# Stage a took about 10 min per device fold on an idle 2-core machine; stage b is hours (docs/fidelity-round-3.md).
# The ten runs pool into one bundle: harbench publish RUN... --pool (no job is in two runs).
set -euo pipefail
R=${1:-results-fidelity}; shift || true
STAGES=${*:-a b}
export HARBENCH_DATA=${HARBENCH_DATA:-../shared/data}
HB=${HB:-harbench}
DEV=suites/real-sp-sw-har-fidelity.yaml
AGE=suites/real-sp-sw-har-age.yaml
FOLD2='target_users=[s09,s10,s11,s12,s13,s14,s15,s16]'
FOLD3='target_users=[s17,s18,s19,s20,s21,s22,s23]'
AGE2=(--set 'target_users=[s02,s03,s09,s13,s14,s15,s16,s19,s22]')

run() {  # a fresh run, or the latest run of the same suite continued
    "$HB" run "$@" --results "$R" -q --resume
}

for stage in $STAGES; do
    case $stage in
        a) drop=(--set 'methods.smldist=~') ;;
        b) drop=(); for m in generic finetune-full finetune-last crop-ft crop tbft duet; do
               drop+=(--set "methods.$m=~"); done ;;
        *) echo "fidelity_reruns.sh: unknown stage '$stage' (expected a or b)" >&2; exit 2 ;;
    esac
    echo "== stage $stage: $(date -u +%FT%TZ)"
    if [ "$stage" = b ]; then  # the age setting first: its 20 users x 3 seeds decide SMLDist's claims alone
        run "$AGE" "${drop[@]}"
        run "$AGE" "${drop[@]}" "${AGE2[@]}"
    fi
    run "$DEV" "${drop[@]}"
    run "$DEV" "${drop[@]}" --set "$FOLD2"
    run "$DEV" "${drop[@]}" --set "$FOLD3"
    if [ "$stage" = a ]; then
        run "$AGE" "${drop[@]}"
        run "$AGE" "${drop[@]}" "${AGE2[@]}"
    fi
done
echo "== done: $(date -u +%FT%TZ)"
