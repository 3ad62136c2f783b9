"""The default grid of ``mjreinforce benchmark`` (no heavy imports: the CLI reads it to build its help)."""

DEFAULT_ENVS = (
    "HalfCheetah-v5",
    "Hopper-v5",
    "Walker2d-v5",
    "Swimmer-v5",
    "Reacher-v5",
    "InvertedDoublePendulum-v5",
    "Ant-v5",
    "Humanoid-v5",
    "HumanoidStandup-v5",
    "Pusher-v5",
)
"""Every Gymnasium MuJoCo task with a Box action space except InvertedPendulum (the time-to-solve benchmark's)."""
DEFAULT_PRESETS = ("reinforce", "vpg", "ppo")
"""The ladder, from the bottom rung up."""
DEFAULT_SEEDS = (1, 2, 3, 4, 5)
DEFAULT_STEPS = 1_000_000
