"""Database access: engines, column types, table definitions and the schema check."""
