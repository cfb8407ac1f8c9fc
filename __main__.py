"""Entry point of the eduscale component package (see `PulumiPlugin.yaml`).

Pulumi starts a Python plugin as `python <plugin directory>`, which runs the
`__main__.py` at the root of that directory, the one holding `PulumiPlugin.yaml`;
it has to be this file. What is published is defined in `infra/component_provider.py`.
"""

from infra.component_provider import main

if __name__ == "__main__":
    main()
