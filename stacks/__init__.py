"""The platform topology, composed from typed stack configuration."""
