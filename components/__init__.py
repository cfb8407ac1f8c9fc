"""Typed Pulumi components for the eduscale platform, one tier per module.

Every component here follows the same conventions, so a team importing one into its own
stack knows what it gets:

- Type token `eduscale:<area>:<Name>` (`eduscale:network:Network`).
- `__init__(self, name, args: <Name>Args, opts=None)`, where `<Name>Args` is a
  `TypedDict`: `pulumi.Input[T]` for values that travel on the wire, plain types only for
  values that shape the graph (counts, CIDR layouts, flags), `NotRequired` for optional
  fields and no `Union` but `Optional`. That is what Pulumi's component provider host can
  publish to other languages.
- Outputs are annotated `pulumi.Output[T]` attributes holding scalars or lists of them
  (ids, endpoints, ARNs), also passed to `register_outputs`.
- Every child resource is created with `parent=self`.
- Every taggable AWS resource carries `standard_tags()` (`project`, `stack`,
  `component`, `managed-by`, and `Name`), and every physical name comes from
  `physical_name()`; both live in `components.conventions`.
- Defaults are the secure, production-grade ones (encryption with rotating customer keys,
  private placement, logs on). Environments differ only by the args they pass.
- Invalid args raise `ValueError` naming the arg and what is allowed, before any child
  resource is declared.
"""

from components.analytics import Analytics, AnalyticsArgs
from components.cache import Cache, CacheArgs
from components.database import Database, DatabaseArgs
from components.document_store import DocumentStore, DocumentStoreArgs
from components.event_bus import EventBus, EventBusArgs, TopicArgs
from components.network import Network, NetworkArgs

__all__ = [
    "Analytics",
    "AnalyticsArgs",
    "Cache",
    "CacheArgs",
    "Database",
    "DatabaseArgs",
    "DocumentStore",
    "DocumentStoreArgs",
    "EventBus",
    "EventBusArgs",
    "Network",
    "NetworkArgs",
    "TopicArgs",
]
