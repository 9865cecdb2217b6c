"""The state stage (see the package docstring for the flow)."""
