"""The CrossGuard policy pack that checks the topology."""
