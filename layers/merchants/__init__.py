"""门前三包 merchants: their public responsibility card and the reports made from it."""
