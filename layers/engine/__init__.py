"""The feature engine: queries, CQL2, CRS, access, tiles, editing, imports and exports of any declared layer."""
