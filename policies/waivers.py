"""What this project deliberately does not meet, each with the reason.

Two tables:

- `WAIVERS`: advisory rules of this pack that do not apply. Only advisory rules may be
  waived: a mandatory rule guards security or data, and a stack that breaks one must not
  deploy. `eduscale policy` skips the rules listed here, and a test keeps the list honest
  (every name exists, none is mandatory).
- `ACCEPTED_FINDINGS`: checks of third-party IaC scanners (checkov, trivy, KICS) that fail
  on the recorded graph on purpose, because AWS or the design leaves no better option.
  They are not rules of this pack, so nothing is skipped; the table exists so a scanner
  run can be triaged against it, and the pack's README shows it.
"""

from dataclasses import dataclass

__all__ = ["ACCEPTED_FINDINGS", "ENV_SECRET_IMAGES", "WAIVERS", "AcceptedFinding"]

WAIVERS: dict[str, str] = {}
"""Rule name -> why it does not apply to this platform."""

ENV_SECRET_IMAGES: dict[str, str] = {
    "kong": "Kong reads its configuration (`KONG_*`, here the Redis password of its "
    "rate-limiting plugin) from environment variables only; the gateway's Secret holds "
    "nothing else.",
    "qdrant/qdrant": "Qdrant takes its API key from `QDRANT__SERVICE__API_KEY` or from a "
    "whole config file; it cannot read the one value from a file.",
    "clickhouse/clickhouse-server": "The server's XML configuration substitutes secrets "
    "with `from_env` only (password hash, cluster and interserver secrets).",
}
"""Third-party images exempt from `k8s-secrets-as-files` (a mandatory rule): image
repository -> why it must take its Secret through the environment. Every image of ours
reads `<NAME>_FILE` (contracts/secret_files.py)."""


@dataclass(frozen=True)
class AcceptedFinding:
    """A scanner check that fails on purpose: which check, where, and why that is right."""

    scanners: tuple[str, ...]
    """The scanners' check ids."""
    resources: str
    """Which resources of the graph it fails on."""
    reason: str
    """Why the finding stays, and what covers the risk instead."""


ACCEPTED_FINDINGS: tuple[AcceptedFinding, ...] = (
    AcceptedFinding(
        scanners=("CKV_AWS_145", "AWS-0132"),
        resources="the access-log buckets of the ALB and of the document bucket",
        reason="ALB access logs and S3 server access logs are delivered only into buckets "
        "encrypted with S3-managed keys (SSE-S3); a KMS key stops delivery. The buckets are "
        "otherwise private, versioned, TLS-only and expiring (s3-encryption-cmk allows "
        "SSE-S3 for log targets only).",
    ),
    AcceptedFinding(
        scanners=("CKV_AWS_18", "AWS-0089"),
        resources="the access-log buckets",
        reason="A log bucket that logged its own access would log forever; every other "
        "bucket logs into one of them (s3-access-logging exempts log targets).",
    ),
    AcceptedFinding(
        scanners=("AWS-0053",),
        resources="the ALB (internet-facing)",
        reason="The ALB is the platform's one door and must face the internet, but only "
        "Cloudflare reaches it: its security group admits Cloudflare's ranges only "
        "(alb-cloudflare-only) and its HTTPS listener requires our own origin-pull client "
        "certificate (alb-origin-mutual-tls); the HTTP listener only redirects.",
    ),
    AcceptedFinding(
        scanners=("CKV_K8S_43",),
        resources="the images inside the Helm releases (kube-prometheus-stack, "
        "prometheus-adapter and the cluster add-ons), when a stack sets no digests",
        reason="Each chart version pins its images by tag, and the chart version is pinned "
        "in the stack config; eduscale:monitoring.imageDigests pins the monitoring charts' "
        "images by digest too (set them from `crane digest` when upgrading a chart). The "
        "platform's own pods are pinned by digest and refused otherwise (k8s-image-pinned).",
    ),
)
"""Scanner findings that stay, with the reason (shown in policies/README.md)."""
