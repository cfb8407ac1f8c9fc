"""The Auth service: accounts, logins and profiles (`services.auth.app:app`)."""
