"""Point-in-time factors over day × symbol panels, the factor panel per pool and its CI fuses."""
