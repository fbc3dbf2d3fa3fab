"""Training data: benchmark sequence loaders, SiamFC pair sampling, synthetic sequences."""
