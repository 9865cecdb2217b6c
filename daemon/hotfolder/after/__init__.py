"""The after stage (see the package docstring for the flow)."""
