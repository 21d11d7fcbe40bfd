"""The training engine: phases (SFT pre-training, GRPO, SFT), TRL trainers, callbacks, control."""
from core.training.control import PAUSE, STOP, RunControl
from core.training.phases import planned_phases, run_training

__all__ = ["PAUSE", "STOP", "RunControl", "planned_phases", "run_training"]
