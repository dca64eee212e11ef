"""The crash-safe journal: the JSON-lines event log, its lock, replay on resume and the check that
a resumed search is the same search."""
