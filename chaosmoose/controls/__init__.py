"""Chaos Toolkit controls shipped with chaosmoose."""
