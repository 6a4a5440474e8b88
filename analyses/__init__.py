"""Coverage, gaps, service areas, siting and targets: pure functions returning frozen results."""
