"""Analysis tools: training diagnostics and the over-fit check."""
