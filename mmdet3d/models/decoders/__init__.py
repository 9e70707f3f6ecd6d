"""models decoders package."""
