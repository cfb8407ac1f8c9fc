"""What every service and worker shares: app factory, worker loop, settings, pools, errors.

Also tokens, logs, health, migrations, and the Kafka plumbing (`kafka`).
"""
