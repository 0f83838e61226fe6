"""Plain async factory functions for test data, one module per domain."""
