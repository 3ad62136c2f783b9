#!/usr/bin/env bash
# Behaviour-preserving changes: train the same seeds with two checkouts and compare their tables.
#   scripts/byte-identity.sh OUT_DIR            # runs with the mjreinforce on PATH / PYTHONPATH
#   scripts/compare-tables.py OUT_A OUT_B       # episodes.csv and evals.csv equal, wall_seconds aside
# Runs: tutorial, reinforce (pendulum and Hopper), vpg (pendulum in-process and in 2 workers, Hopper),
# and the same vpg Hopper run stopped by SIGINT and resumed (compare it with vpg_hopper).
set -u
OUT=$1
mkdir -p "$OUT" && cd "$OUT"
T="mjreinforce train --backend gymnasium --quiet --no-plot --overwrite"
HOPPER="--preset vpg --env Hopper-v5 --seeds 1 --steps 24000 --set eval_every_steps=8000 --set checkpoint_every=1"
$T --preset tutorial --seeds 1,2 --episodes 300 --out tutorial > tutorial.log 2>&1; echo "tutorial $?"
$T --preset reinforce --seeds 1,2 --steps 20000 --set eval_every_steps=2000 --out reinforce_pendulum > rp.log 2>&1
echo "reinforce_pendulum $?"
$T --preset reinforce --env Hopper-v5 --seeds 1 --steps 20000 --set eval_every_steps=10000 --out reinforce_hopper \
  > rh.log 2>&1; echo "reinforce_hopper $?"
$T --preset vpg --seeds 1,2 --steps 30000 --out vpg_pendulum > vp.log 2>&1; echo "vpg_pendulum $?"
$T --preset vpg --seeds 1,2 --steps 30000 --workers 2 --out vpg_pendulum_workers > vpw.log 2>&1
echo "vpg_pendulum_workers $?"
$T $HOPPER --out vpg_hopper > vh.log 2>&1; echo "vpg_hopper $?"
$T $HOPPER --out vpg_hopper_resumed > vhr1.log 2>&1 &
PID=$!; sleep 12; kill -INT $PID; wait $PID; echo "interrupted $?"
mjreinforce train --resume vpg_hopper_resumed --quiet --no-plot > vhr2.log 2>&1; echo "resumed $?"
