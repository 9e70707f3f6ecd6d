"""Colour maps and drawing helpers; never imported from models."""
