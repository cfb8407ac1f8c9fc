"""How the platform installs a third-party chart: one Helm release, pinned and all-or-nothing.

Every chart we install (cluster add-ons, the monitoring stack) takes the same safety
settings: `atomic` rolls a failed upgrade back instead of leaving a half-applied release,
`cleanup_on_fail` removes what a failed install created, and the chart's version is always
pinned by the caller. Keeping them here means a new chart cannot forget one.
"""

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

__all__ = ["chart_release"]


def chart_release(
    resource_name: str,
    *,
    release: str,
    chart: str,
    repo: str,
    version: str,
    namespace: pulumi.Input[str],
    values: pulumi.Input[dict[str, Any]],
    opts: pulumi.ResourceOptions,
) -> k8s.helm.v3.Release:
    """Install `chart` at `version` from `repo` as the release `release` in `namespace`.

    The namespace is created with the release, except kube-system, which always exists.
    """
    return k8s.helm.v3.Release(
        resource_name,
        name=release,
        chart=chart,
        version=version,
        repository_opts={"repo": repo},
        namespace=namespace,
        create_namespace=namespace != "kube-system",
        atomic=True,
        cleanup_on_fail=True,
        values=values,
        opts=opts,
    )
