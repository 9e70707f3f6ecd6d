"""evaluation functional package."""
