"""Trainers for the teacher, the XNOR baseline and RB-SF, and the chain that runs them."""
from rbsf.errors import Interrupted
from rbsf.train.chain import check_chain, load_teacher, resolve_sequences, train_chain
from rbsf.train.config import PRESETS, STAGES, TrainConfig, preset
from rbsf.train.tracking import Trainer
from rbsf.train.trainer import CoreTrainer, TrainingError

__all__ = ["PRESETS", "STAGES", "TrainConfig", "preset", "CoreTrainer", "Trainer", "TrainingError",
           "Interrupted", "check_chain", "train_chain", "load_teacher", "resolve_sequences"]
