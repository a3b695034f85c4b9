"""P&L attribution: Brinson–Fachler allocation/selection/interaction, implementation shortfall, markouts (pure)."""
