"""Point-in-time fundamentals (issue 5): which report may be used on which day."""
