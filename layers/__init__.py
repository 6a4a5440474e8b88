"""District reference data, layer schemas, validation, import/export and the store."""
