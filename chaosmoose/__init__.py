"""chaosmoose: Chaos Toolkit extension for the MooseNG lab."""
__version__ = "0.1.0"
