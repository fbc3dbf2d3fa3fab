"""Training data: benchmark sequence loaders, SiamFC pair sampling, synthetic sequences."""
from rbsf.data.pairs import PairConfig, PairDataset, balanced_labels, valid_frames
from rbsf.data.sequences import DatasetError, Sequence, default_root, load_sequences

__all__ = ["DatasetError", "PairConfig", "PairDataset", "Sequence", "balanced_labels",
           "default_root", "load_sequences", "valid_frames"]
