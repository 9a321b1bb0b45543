"""Reports over the projection: definitions, formats, pinned runs and period close."""
