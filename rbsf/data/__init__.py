"""Training data: benchmark sequence loaders, SiamFC pair sampling, synthetic sequences."""
from rbsf.data.pairs import PairConfig, PairDataset, balanced_labels, pair_labels, valid_frames
from rbsf.data.sequences import (DatasetError, Sequence, data_fingerprint, default_root,
                                 load_sequences)

__all__ = ["DatasetError", "PairConfig", "PairDataset", "Sequence", "balanced_labels",
           "data_fingerprint", "default_root", "load_sequences", "pair_labels", "valid_frames"]
