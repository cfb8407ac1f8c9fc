"""The Pulumi program (`infra/__main__.py`), its offline engine and the `eduscale` CLI."""
