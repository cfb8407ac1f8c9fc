"""What every service shares: settings, pools, errors, tokens, logs, health, migrations."""
