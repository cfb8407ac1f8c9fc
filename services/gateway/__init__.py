"""The local API gateway of `eduscale dev up`: Kong's routes, limits and CORS, in Python."""
