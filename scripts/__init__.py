"""Developer scripts (not shipped in the wheel)."""
