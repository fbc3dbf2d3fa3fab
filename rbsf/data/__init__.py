"""Training data: benchmark sequence loaders, SiamFC pair sampling, synthetic sequences."""
from rbsf.data.pairs import PairConfig, PairDataset, balanced_labels, valid_frames
from rbsf.data.sequences import DatasetError, Sequence, load_sequences

__all__ = ["DatasetError", "PairConfig", "PairDataset", "Sequence", "balanced_labels",
           "load_sequences", "valid_frames"]
