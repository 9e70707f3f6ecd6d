"""models detectors package."""
