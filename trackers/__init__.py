"""Tracker classes (got10k ``Tracker`` interface) built on the rbsf library, and the one
registry that maps the tools' tracker names to them (``trackers.registry``)."""
from trackers.siamfc import SiamFCTracker, TrackerParams

__all__ = ["SiamFCTracker", "TrackerParams"]
