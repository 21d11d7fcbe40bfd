"""The training engine: phases (SFT pre-training, GRPO, SFT), TRL trainers, callbacks, control.

Kept import-light on purpose: `core.training.control` must load without transformers, so that the
worker can import Unsloth (which patches transformers and TRL) before them. Import the parts from
their modules (`core.training.phases.run_training`).
"""
