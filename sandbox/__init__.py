"""Local AWS fleet emulator (dev/test only): moto's server plus Patch Manager, Run Command, Organizations reads,
a seeded fleet generator and fault injection. Product code never imports this package."""
