"""The transfer stage (see the package docstring for the flow)."""
