"""Reward functions and their registry (see rewards/registry.py for the contract).

Importing this package registers every preset module.
"""
from rewards import formatting, mathematics, programming, qa, reasoning, writing

PRESET_MODULES = (formatting, mathematics, programming, qa, reasoning, writing)  # import registers
from rewards.custom import CustomReward
from rewards.registry import (BoundReward, Markers, Param, RewardError, RewardSpec, build_reward,
                              check_scores, get_spec, list_rewards, register, unique_names)

__all__ = ["BoundReward", "CustomReward", "Markers", "Param", "RewardError", "RewardSpec",
           "build_reward", "check_scores", "get_spec", "list_rewards", "register", "unique_names"]
