"""The store: connections, the project's own cluster, migrations, tables built from the registry, layer versions, bulk writes, roles, backups."""
