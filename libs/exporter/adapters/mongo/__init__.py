"""MongoDB adapters: the client, the indexes and one repository per collection."""
