"""The indexer: course documents cut into chunks, embedded and kept in Qdrant for search."""
