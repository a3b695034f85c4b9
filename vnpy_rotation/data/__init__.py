"""Market data: file formats, validation, corporate actions (pure) and the database layer."""
