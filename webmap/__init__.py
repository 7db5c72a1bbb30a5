"""Folium map builders for the planner, inspector and leader pages."""
