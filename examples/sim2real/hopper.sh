#!/usr/bin/env bash
# The sim-to-real demonstration in docs/perturbations.md: Hopper-v5, 1M env steps, one policy trained
# plainly and one trained with physics randomization, observation noise, action delay and pushes; then the
# two 2-D robustness maps. Run from the repository root: bash examples/sim2real/hopper.sh [OUT_DIR]
set -euo pipefail
OUT=${1:-runs/sim2real}
SEEDS=${SEEDS:-1}
mkdir -p "$OUT"
mjreinforce train --preset vpg --env Hopper-v5 --seeds "$SEEDS" --steps 1000000 --backend gymnasium \
    --out "$OUT/plain" --quiet --no-plot
mjreinforce train --preset vpg --env Hopper-v5 --seeds "$SEEDS" --steps 1000000 --backend gymnasium \
    --set 'randomize=["geom_friction.foot_geom*=0.5:1.5", "body_mass.torso*=0.7:1.5"]' \
    --set obs_noise_std=0.02 --set action_delay_steps=0:2 \
    --set push_body=torso --set push_force=20:100 --set push_interval_steps=100:200 --set push_duration_steps=5 \
    --out "$OUT/robust" --quiet --no-plot
mjreinforce eval "$OUT/plain" --episodes 20 --out "$OUT/plain_nominal.json"
mjreinforce eval "$OUT/robust" --episodes 20 --out "$OUT/robust_nominal.json"
mjreinforce robustness "$OUT/plain" "$OUT/robust" --labels plain,robust --episodes 5 \
    --vary push_force=0:200:5 --vary action_delay_steps=0:4:5 \
    --perturb push_body=torso --perturb push_interval_steps=100:200 --perturb push_duration_steps=5 \
    --out "$OUT/map_push_delay"
mjreinforce robustness "$OUT/plain" "$OUT/robust" --labels plain,robust --episodes 5 \
    --vary 'geom_friction.foot_geom*=0.25:2:5' --vary 'body_mass.torso*=0.5:2:5' \
    --out "$OUT/map_friction_mass"
