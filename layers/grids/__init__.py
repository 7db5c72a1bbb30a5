"""The grid domain: grid families, changes, history, files and the county grid import, patrol maps."""
