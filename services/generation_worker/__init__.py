"""`eduscale worker generation`: answers generation requests through the semantic cache."""
