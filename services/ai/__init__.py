"""The AI library: provider client and breakers, semantic cache, jobs, documents, Qdrant."""
