"""Advisory rules this project deliberately does not meet, each with the reason.

Only advisory rules may be waived: a mandatory rule guards security or data, and a stack
that breaks one must not deploy. `eduscale policy` skips the rules listed here, and a test
keeps the list honest (every name exists, none is mandatory).
"""

__all__ = ["WAIVERS"]

WAIVERS: dict[str, str] = {}
"""Rule name -> why it does not apply to this platform."""
