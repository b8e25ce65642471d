"""Trading data."""
