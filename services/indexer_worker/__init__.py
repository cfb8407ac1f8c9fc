"""`eduscale worker indexer`: reads uploaded documents into the course index."""
