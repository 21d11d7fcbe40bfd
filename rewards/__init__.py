"""Reward functions and their registry (see rewards/registry.py for the contract).

Importing this package registers every preset module.
"""
from rewards import correctness, formatting, length  # noqa: F401  (registration side effect)
from rewards.registry import (BoundReward, Markers, Param, RewardError, RewardSpec, build_reward,
                              get_spec, list_rewards, register)

__all__ = ["BoundReward", "Markers", "Param", "RewardError", "RewardSpec", "build_reward",
           "get_spec", "list_rewards", "register"]
