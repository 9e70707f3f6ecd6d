"""models occ_encoders package."""
