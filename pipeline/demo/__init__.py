"""The demo: the pipeline end to end on a throwaway SQLite database with bundled traffic."""
