"""Experiment drivers built on the rbsf library and the tracker registry: the small-scale
reproduction of the paper's comparison (``reproduce``), the tracker speed benchmark
(``speed``) and the study of the packed engine's 8-bit conv1 (``conv1_accuracy``). Tools and
benchmarks wrap them; the library never imports them."""
