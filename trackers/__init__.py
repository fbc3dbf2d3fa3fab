"""Tracker classes (got10k ``Tracker`` interface) built on the rbsf library."""
from trackers.siamfc import REPORT_NAMES, SiamFCTracker, TrackerParams

__all__ = ["REPORT_NAMES", "SiamFCTracker", "TrackerParams"]
