"""models losses package."""
