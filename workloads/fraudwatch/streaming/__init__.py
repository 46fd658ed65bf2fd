"""Events through Kafka: versioned event schemas, the producer, and the streaming scorer."""
