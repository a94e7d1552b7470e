"""Training: configuration, presets, the trainer, evaluation, schedules, checkpoints, metrics."""

from foveal.training.checkpoint import ModelSpec, load_checkpoint, save_checkpoint
from foveal.training.config import TrainConfig
from foveal.training.evaluate import EvalResult, evaluate, evaluate_classifier
from foveal.training.presets import PRESETS, preset
from foveal.training.trainer import RunResult, Trainer, resume_config, select_device, train

__all__ = [
    "PRESETS", "EvalResult", "ModelSpec", "RunResult", "TrainConfig", "Trainer", "evaluate",
    "evaluate_classifier", "load_checkpoint", "preset", "resume_config", "save_checkpoint",
    "select_device", "train",
]
