"""Kubernetes kinds whose structure the tests check by hand: no upstream schema covers them.

KEDA's, the Load Balancer Controller's and the Prometheus Operator's custom resources; the schema test
(tests/stacks/test_kubernetes_schemas.py) and the manifest test (tests/infra/) share it.
"""

CUSTOM_KINDS = {
    "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding",
    "kubernetes:keda.sh/v1alpha1:ScaledObject",
    "kubernetes:keda.sh/v1alpha1:TriggerAuthentication",
    "kubernetes:monitoring.coreos.com/v1:PodMonitor",
    "kubernetes:monitoring.coreos.com/v1:PrometheusRule",
}
