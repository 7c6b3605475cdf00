#!/usr/bin/env bash
# Issue #33, item 3: every paper claim re-run on sp-sw-har with every eligible subject a target, three seeds.
#
#   scripts/fidelity_reruns.sh [RESULTS] [STAGE...]
#
# RESULTS (default results-fidelity) is the store; it survives interruptions: run the same command again and every
# run continues where it stopped (--resume; a run whose code changed since is started afresh). Stages, in order:
#   a  CRoP, DUET, TBFT, generic and fine-tuning: the device folds and both age directions
#   b  SMLDist alone, the same runs (its teacher and four students train on the population once per run and seed:
#      most of the compute; its summary reads only its own rows); the age setting first
#   c  the papers' own suites (suites/crop.yaml, duet.yaml, tbft.yaml, smldist.yaml) at three seeds, a run each
#      (published one bundle per suite: published/crop, ...); SUITES="tbft smldist" runs only those
# Stage b's halves run alone as b-age (the age split) and b-dev (the device folds).
# The runs pool into one bundle: harbench publish RUN... --pool (no job is in two runs; docs/fidelity-round-3.md).
#
# Who can be a target: at the suites' k = 6 adapt windows per class, sp-sw-har's loader refuses s18 (5 'seated'
# windows on either device), s23 (k = 6 leaves no test_seen window on either device) and, on the watch, s09
# (5 'seated' windows). Every other subject is a target once: 21 users phone -> watch, 20 watch -> phone (folds of
# at most 8, the population the other subjects), and in the age split 10 aged 50+ (s18 excluded) and 9 under 40.
set -euo pipefail
R=${1:-results-fidelity}; shift || true
STAGES=${*:-a b c}
export HARBENCH_DATA=${HARBENCH_DATA:-../shared/data}
HB=${HB:-harbench}
DEV=suites/real-sp-sw-har-fidelity.yaml
AGE=suites/real-sp-sw-har-age.yaml
PHONE_ONLY=(--set 'datasets.1=~')   # the suite's second dataset is watch -> phone
WATCH_ONLY=(--set 'datasets.0=~')
FOLD1='target_users=[s01,s02,s03,s04,s05,s06,s07,s08]'
FOLD2='target_users=[s09,s10,s11,s12,s13,s14,s15,s16]'
FOLD2_WATCH='target_users=[s10,s11,s12,s13,s14,s15,s16]'
FOLD3='target_users=[s17,s19,s20,s21,s22]'
OLD='target_users=[s01,s04,s05,s06,s08,s10,s11,s17,s20,s21]'
YOUNG='target_users=[s02,s03,s09,s13,s14,s15,s16,s19,s22]'

run() {  # a fresh run, or the latest run of the same suite continued
    "$HB" run "$@" --results "$R" -q --resume
}

for stage in $STAGES; do
    if [ "$stage" = c ]; then
        echo "== stage c: $(date -u +%FT%TZ)"
        for suite in ${SUITES:-crop duet tbft smldist}; do run "suites/$suite.yaml" --set 'seeds=[0,1,2]'; done
        continue
    fi
    case $stage in
        a) drop=(--set 'methods.smldist=~') ;;
        b|b-age|b-dev) drop=(); for m in generic finetune-full finetune-last crop-ft crop tbft duet; do
               drop+=(--set "methods.$m=~"); done ;;
        *) echo "fidelity_reruns.sh: unknown stage '$stage' (expected a, b, b-age, b-dev or c)" >&2; exit 2 ;;
    esac
    echo "== stage $stage: $(date -u +%FT%TZ)"
    if [ "$stage" = b ] || [ "$stage" = b-age ]; then  # the age setting first: 19 users x 3 seeds decide alone
        run "$AGE" "${drop[@]}" --set "$OLD"
        run "$AGE" "${drop[@]}" --set "$YOUNG"
        [ "$stage" = b-age ] && continue
    fi
    run "$DEV" "${drop[@]}" --set "$FOLD1"
    run "$DEV" "${drop[@]}" "${PHONE_ONLY[@]}" --set "$FOLD2"
    run "$DEV" "${drop[@]}" "${WATCH_ONLY[@]}" --set "$FOLD2_WATCH"
    run "$DEV" "${drop[@]}" --set "$FOLD3"
    if [ "$stage" = a ]; then
        run "$AGE" "${drop[@]}" --set "$OLD"
        run "$AGE" "${drop[@]}" --set "$YOUNG"
    fi
done
echo "== done: $(date -u +%FT%TZ)"
