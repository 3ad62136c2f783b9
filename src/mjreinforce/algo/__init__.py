"""The algorithm: policy and value networks, observation normalization, rollouts, returns, the update."""
