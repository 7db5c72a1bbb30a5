"""Where things are: counties and their official boundaries."""
