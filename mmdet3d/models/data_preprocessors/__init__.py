"""models data_preprocessors package."""
