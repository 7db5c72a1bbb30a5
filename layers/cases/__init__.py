"""The case domain: reporting, workflow, deadlines, categories, units, statistics, heatmaps, imports."""
