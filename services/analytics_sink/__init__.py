"""`eduscale worker analytics`: learning-analytics events from Kafka into ClickHouse."""
