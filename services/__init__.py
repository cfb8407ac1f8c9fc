"""The platform's Litestar services and Kafka workers."""
