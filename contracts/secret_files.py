"""How a workload receives its secrets: read-only files, named by `<NAME>_FILE` variables.

A secret in an environment variable shows in `/proc/<pid>/environ`, in crash dumps and
in `kubectl describe`; a file in a read-only volume does not. The Workload component
mounts every secret of a pod under `SECRETS_DIR` (one file per variable) and sets
`<NAME>_FILE` to its path; the services' settings read `<NAME>_FILE` wherever a secret
`<NAME>` is declared.
"""

__all__ = ["FILE_SUFFIX", "SECRETS_DIR", "secret_file"]

FILE_SUFFIX = "_FILE"
"""`<NAME>_FILE` holds the path of the file holding the secret `<NAME>`."""
SECRETS_DIR = "/run/secrets/eduscale"
"""Where a workload's secrets are mounted (read-only)."""


def secret_file(name: str) -> str:
    """The path of the file holding the secret variable `name`."""
    return f"{SECRETS_DIR}/{name}"
