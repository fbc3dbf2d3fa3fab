"""Command-line entry points, one per job (``python tools/<job>.py --help``); thin wrappers
over the rbsf library, the tracker registry and the experiment drivers."""
