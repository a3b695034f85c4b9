"""Point-in-time fundamentals: which report may be used on which day."""
