"""The component inventory's own data beside its layer: photos of components."""
