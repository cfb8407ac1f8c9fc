-- The W3C traceparent of the request that queued a message: the relay sends it as a
-- Kafka header, so the worker's span joins the request's trace.
ALTER TABLE outbox ADD COLUMN traceparent text;
