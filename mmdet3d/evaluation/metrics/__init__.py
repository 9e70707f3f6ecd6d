"""evaluation metrics package."""
