"""Garbage sorting (垃圾分类): the progress of the compounds' sorting points."""
