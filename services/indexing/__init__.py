"""The indexing library: course documents read, cut into chunks and kept in Qdrant."""
