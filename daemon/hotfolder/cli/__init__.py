"""The cli stage (see the package docstring for the flow)."""
