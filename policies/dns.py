"""Rules for Route 53 records that spread traffic: each target is health-checked.

A weighted record set spreads lookups over its targets (the database's reader endpoint:
one record per read replica). Without a health check on each record, a target that has
failed keeps its share of lookups, so that share of new connections fails. With one, Route
53 leaves the failed target out of its answers.

For a health check that follows a CloudWatch alarm (the only kind that can watch a private
RDS endpoint), the rule also checks what the alarm watches: it must treat missing data as
breaching, since a replica that is down publishes no metrics at all, and where the alarm
and the record both point at a database instance of the stack, it must be the same one.
Links are the engine's property dependencies; a health check declared outside the stack
(a literal id) is taken on trust.
"""

from collections.abc import Iterable

from pulumi_policy import PolicyResource, Severity, StackValidationArgs

from policies.network import linked
from policies.support import get, stack_rule

__all__ = ["POLICIES"]

RECORD = "aws:route53/record:Record"
HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DATABASES = frozenset({"aws:rds/instance:Instance", "aws:rds/cluster:Cluster"})


def _weighted(record: PolicyResource) -> bool:
    return bool(get(record.props, "weightedRoutingPolicies"))


def _alarm_problems(record: PolicyResource, check: PolicyResource) -> Iterable[str]:
    if str(get(check.props, "type") or "").upper() != "CLOUDWATCH_METRIC":
        return
    for alarm in linked(check, "cloudwatchAlarmName", {ALARM}):
        if get(alarm.props, "treatMissingData") != "breaching":
            yield (
                "its health check's alarm does not treat missing data as breaching: a target "
                "that is down publishes nothing and stays healthy"
            )
        targets = {r.urn for r in linked(record, "records", DATABASES)}
        watched = {r.urn for r in linked(alarm, "dimensions", DATABASES)}
        if targets and watched and not targets & watched:
            yield "its health check's alarm watches another database instance than it points at"


def _weighted_health_checks(args: StackValidationArgs) -> Iterable[tuple[str, str | None]]:
    for record in args.resources:
        if record.resource_type != RECORD or not _weighted(record):
            continue
        if not get(record.props, "healthCheckId"):
            message = (
                "the weighted record has no health check: a failed target keeps receiving "
                "its share of lookups"
            )
            yield message, record.urn
            continue
        for check in linked(record, "healthCheckId", {HEALTH_CHECK}):
            for problem in _alarm_problems(record, check):
                yield problem, record.urn


POLICIES = [
    stack_rule(
        "route53-weighted-health-check",
        "Every record of a weighted set (the database's reader endpoint) carries a health "
        "check that notices a dead target, or a failed replica keeps receiving its share of "
        "reads.",
        severity=Severity.MEDIUM, mandatory=True, check=_weighted_health_checks,
        fix="Set healthCheckId on each weighted record; for a private target, use a "
        "CLOUDWATCH_METRIC health check on an alarm over that target with "
        "treatMissingData = breaching (the Database component does).",
        scanners=["derived"],
    ),
]  # fmt: skip
