"""Command handlers, one module per topic of the spec."""
