"""The method registry (filled in as methods land)."""
