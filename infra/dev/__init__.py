"""The local platform: `eduscale dev up` (everything on one machine) and `eduscale dev seed`."""
