"""RDS PostgreSQL: one writer and N read replicas, with the reader endpoint over replicas.

The writer takes every write; reporting and analytics read only from replicas, so a heavy
report can never slow a learner's quiz submission. The reader endpoint is a Route 53
record in a private hosted zone of the VPC: one weighted CNAME per replica under the same
name, so each lookup picks a replica and the writer is never in the set. Services use
`reader_endpoint` (one name, spread by DNS); `reader_endpoints` lists the replicas for
clients that prefer to spread connections themselves. With no replicas the reader
endpoint is empty: reports then fail loudly instead of quietly landing on the writer.

Each weighted record carries a health check, so a failed replica stops receiving a share
of new connections. Route 53 cannot probe a private RDS endpoint, and RDS Proxy offers
read-only endpoints for Aurora clusters only, so the check follows a CloudWatch alarm on
the replica's `ReplicaLag`: the alarm fires when the replica falls too far behind, and
also when it publishes nothing (stopped, rebooting, failed), because missing data counts
as breaching. When every replica is unhealthy Route 53 answers with all of them (it fails
open), which keeps reports on replicas, never on the writer.

Secure defaults, after terraform-aws-modules/rds: storage and Performance Insights
encrypted with a rotating customer key; the master password generated and kept by
Secrets Manager (never in code, config or state); not publicly accessible, only in the
private subnets, reachable on 5432 only from the given security groups; TLS forced by the
parameter group; IAM database authentication; PostgreSQL and upgrade logs exported into
log groups we declare first (encrypted, kept a year by default: the connection log is the
only record of who reached the database);
enhanced monitoring; a final snapshot and deletion protection unless turned off.
"""

import json
from collections.abc import Callable
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from components.conventions import physical_name, standard_tags
from components.encryption import customer_managed_key
from components.log_groups import encrypted_log_group, retention_days
from components.security import data_store_security_group
from components.type_tokens import DATABASE

APP_USER = "eduscale_app"
"""The services' database user: IAM-token logins only (created by migration 0003)."""

__all__ = ["APP_USER", "Database", "DatabaseArgs"]

APP_USER = "eduscale_app"
"""The services' database user: IAM-token logins only (created by migration 0003)."""

PORT = 5432
_LOG_EXPORTS = ["postgresql", "upgrade"]
_CA = "rds-ca-rsa2048-g1"


class DatabaseArgs(TypedDict):
    """Inputs of `Database`."""

    vpc_id: pulumi.Input[str]
    """The VPC the database lives in."""
    subnet_ids: pulumi.Input[list[str]]
    """Private subnets (one per AZ) for the DB subnet group."""
    availability_zones: pulumi.Input[list[str]]
    """The AZs of those subnets; replicas are spread over them, away from the writer's."""
    allowed_security_group_ids: pulumi.Input[list[str]]
    """Security groups whose members may connect on 5432; nothing else can."""
    engine_version: str
    """PostgreSQL version, e.g. `17.4`; its major version picks the parameter group family."""
    instance_class: pulumi.Input[str]
    """Instance class of the writer (and of the replicas unless `replica_instance_class`
    says otherwise), e.g. `db.r7g.4xlarge`."""
    replica_instance_class: NotRequired[pulumi.Input[str]]
    """Instance class of every read replica (default: the writer's class). Replicas serve
    only reads, so they are sized by the read load, which can need fewer vCPUs than the
    writer's writes. They also replay the writer's WAL, but PostgreSQL replays it in one
    process, so replay keeps up no faster on more vCPUs: it needs one core left free, not
    the writer's size. A replica that still falls behind leaves the reader endpoint
    through its ReplicaLag health check and alarm (docs/reader-endpoint-health.md). A standby
    must hold some settings at least at the writer's values (`max_connections`, derived
    from memory); RDS overrides those of a smaller replica that would otherwise not start
    (RDS user guide, PostgreSQL read replicas)."""
    replica_count: int
    """How many read replicas (0 to 15)."""
    multi_az: NotRequired[bool]
    """A synchronous standby for the writer in another AZ (default on)."""
    allocated_storage_gb: NotRequired[int]
    """Initial gp3 storage (default 100 GiB)."""
    max_allocated_storage_gb: NotRequired[int]
    """Storage autoscaling ceiling (default 1000 GiB)."""
    backup_retention_days: NotRequired[int]
    """Automated backups kept this many days (default 14; replicas need the writer's)."""
    deletion_protection: NotRequired[bool]
    """Refuse deletion, and take a final snapshot if deleted anyway (default on)."""
    performance_insights_retention_days: NotRequired[int]
    """Performance Insights retention (default 7, the free tier)."""
    slow_statement_ms: NotRequired[int]
    """Statements slower than this are logged (default 500 ms)."""
    database_name: NotRequired[str]
    """The database created on the writer (default `eduscale`)."""
    replica_max_lag_seconds: NotRequired[int]
    """A replica further behind than this for two minutes leaves the reader endpoint
    (default 600 s: above the ~5 minutes an idle RDS PostgreSQL replica may report, so a
    quiet dev database does not flap)."""
    log_retention_days: NotRequired[int]
    """Retention of the exported PostgreSQL and upgrade logs in CloudWatch (default 365
    days). The PostgreSQL log holds every connection and disconnection: the database's
    only access trail, kept as long as the VPC flow logs and the EKS audit log."""


class Database(pulumi.ComponentResource):
    """A PostgreSQL writer with read replicas and a replicas-only reader endpoint."""

    writer_endpoint: pulumi.Output[str]
    """Host name of the writer: every write, and reads that must see them."""
    reader_endpoint: pulumi.Output[str]
    """Host name that resolves to one of the replicas only (empty without replicas)."""
    reader_endpoints: pulumi.Output[list[str]]
    """Host names of each replica."""
    port: pulumi.Output[int]
    """PostgreSQL port of the writer and the replicas."""
    master_secret_arn: pulumi.Output[str]
    """Secrets Manager secret holding the master credentials (managed and rotated by RDS)."""
    master_secret_kms_key_arn: pulumi.Output[str]
    """The customer-managed key that encrypts the master secret: whoever reads the secret
    needs `kms:Decrypt` on it (through Secrets Manager)."""
    security_group_id: pulumi.Output[str]
    """The database's security group."""
    app_user_arns: pulumi.Output[list[str]]
    """`rds-db:connect` resources for APP_USER on the writer and each replica: what a
    workload's IAM role is granted to log in with IAM tokens."""

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(DATABASE.token, name, None, DATABASE.options(opts))
        replica_count = int(args["replica_count"])
        if not 0 <= replica_count <= 15:  # noqa: PLR2004
            raise ValueError(f"replica_count is {replica_count}; allowed is 0 to 15")
        max_lag = int(args.get("replica_max_lag_seconds", 600))
        if not 10 <= max_lag <= 86_400:  # noqa: PLR2004
            raise ValueError(f"replica_max_lag_seconds is {max_lag}; allowed is 10 to 86400")
        major = args["engine_version"].split(".")[0]
        deletion_protection = bool(args.get("deletion_protection", True))
        child = pulumi.ResourceOptions(parent=self)

        log_retention_days = retention_days(
            "log_retention_days", args.get("log_retention_days", 365)
        )
        key = customer_managed_key(name, "storage", parent=self, for_log_groups=True)
        security_group = data_store_security_group(
            name,
            vpc_id=args["vpc_id"],
            port=PORT,
            allowed_security_group_ids=args["allowed_security_group_ids"],
            description="PostgreSQL",
            parent=self,
        )
        subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets",
            name=physical_name(name),
            subnet_ids=args["subnet_ids"],
            tags=standard_tags(name, physical_name(name)),
            opts=child,
        )
        parameters = aws.rds.ParameterGroup(
            f"{name}-parameters",
            name=physical_name(name, f"postgres{major}"),
            family=f"postgres{major}",
            description=f"{physical_name(name)}: TLS only, slow statements logged",
            parameters=[
                {"name": "rds.force_ssl", "value": "1"},
                {
                    "name": "log_min_duration_statement",
                    "value": str(args.get("slow_statement_ms", 500)),
                },
                {"name": "log_connections", "value": "1"},
                {"name": "log_disconnections", "value": "1"},
                {"name": "log_lock_waits", "value": "1"},
            ],
            tags=standard_tags(name, physical_name(name, f"postgres{major}")),
            opts=child,
        )
        monitoring_role = self._monitoring_role(name)

        shared = {
            "instance_class": args["instance_class"],
            "storage_encrypted": True,
            "kms_key_id": key.arn,
            "parameter_group_name": parameters.name,
            "vpc_security_group_ids": [security_group.id],
            "publicly_accessible": False,
            "iam_database_authentication_enabled": True,
            "performance_insights_enabled": True,
            "performance_insights_kms_key_id": key.arn,
            "performance_insights_retention_period": args.get(
                "performance_insights_retention_days", 7
            ),
            "enabled_cloudwatch_logs_exports": _LOG_EXPORTS,
            "monitoring_interval": 60,
            "monitoring_role_arn": monitoring_role.arn,
            "auto_minor_version_upgrade": True,
            "ca_cert_identifier": _CA,
            "copy_tags_to_snapshot": True,
            "deletion_protection": deletion_protection,
        }
        writer_id = physical_name(name, "writer")
        writer_logs = self._log_groups(name, writer_id, key, log_retention_days)
        writer = aws.rds.Instance(
            f"{name}-writer",
            identifier=writer_id,
            engine="postgres",
            engine_version=args["engine_version"],
            db_name=args.get("database_name", "eduscale"),
            username="eduscale_admin",
            manage_master_user_password=True,
            master_user_secret_kms_key_id=key.key_id,
            db_subnet_group_name=subnet_group.name,
            multi_az=bool(args.get("multi_az", True)),
            storage_type="gp3",
            allocated_storage=args.get("allocated_storage_gb", 100),
            max_allocated_storage=args.get("max_allocated_storage_gb", 1000),
            backup_retention_period=args.get("backup_retention_days", 14),
            backup_window="02:00-03:00",
            maintenance_window="sun:03:30-sun:04:30",
            skip_final_snapshot=not deletion_protection,
            final_snapshot_identifier=physical_name(name, "writer", "final"),
            tags=standard_tags(name, writer_id),
            opts=pulumi.ResourceOptions(parent=self, depends_on=writer_logs),
            # mypy cannot match a dict of mixed values to keyword parameters; the
            # arguments are checked by the provider SDK at run time and by the tests.
            **shared,  # type: ignore[arg-type]
        )

        replica_class = args.get("replica_instance_class", args["instance_class"])
        replicas = []
        zones = pulumi.Output.from_input(args["availability_zones"])
        for index in range(replica_count):
            replica_id = physical_name(name, f"replica-{index + 1}")
            replica_logs = self._log_groups(name, replica_id, key, log_retention_days)
            replicas.append(
                aws.rds.Instance(
                    f"{name}-replica-{index + 1}",
                    identifier=replica_id,
                    replicate_source_db=writer.identifier,
                    # The writer's primary sits in the first AZ; replicas start from the second.
                    availability_zone=zones.apply(_spread(index)),
                    multi_az=False,
                    max_allocated_storage=args.get("max_allocated_storage_gb", 1000),
                    backup_retention_period=0,
                    maintenance_window="sun:04:30-sun:05:30",
                    skip_final_snapshot=True,
                    tags=standard_tags(name, replica_id),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=replica_logs),
                    **{**shared, "instance_class": replica_class},  # type: ignore[arg-type]
                )
            )

        self.writer_endpoint = writer.address
        self.reader_endpoints = pulumi.Output.all(*[r.address for r in replicas])
        self.reader_endpoint = self._reader_record(name, args["vpc_id"], replicas, max_lag)
        self.port = writer.port
        self.master_secret_arn = writer.master_user_secrets.apply(
            lambda secrets: (secrets[0].secret_arn or "") if secrets else ""
        )
        self.master_secret_kms_key_arn = key.arn
        self.security_group_id = security_group.id
        self.app_user_arns = pulumi.Output.all(
            *[pulumi.Output.all(i.arn, i.resource_id) for i in (writer, *replicas)]
        ).apply(lambda pairs: [_connect_arn(arn, resource_id) for arn, resource_id in pairs])
        self.register_outputs(
            {
                "writer_endpoint": self.writer_endpoint,
                "reader_endpoint": self.reader_endpoint,
                "reader_endpoints": self.reader_endpoints,
                "port": self.port,
                "master_secret_arn": self.master_secret_arn,
                "master_secret_kms_key_arn": self.master_secret_kms_key_arn,
                "security_group_id": self.security_group_id,
                "app_user_arns": self.app_user_arns,
            }
        )

    def _log_groups(
        self, name: str, instance_id: str, key: aws.kms.Key, retention_days: int
    ) -> list[pulumi.Resource]:
        """Declared before the instance, or RDS creates them unencrypted and kept forever."""
        return [
            encrypted_log_group(
                name,
                f"{instance_id.removeprefix(physical_name(name) + '-')}-{log}",
                retention_days=retention_days,
                key=key,
                parent=self,
                name=f"/aws/rds/instance/{instance_id}/{log}",
            )
            for log in _LOG_EXPORTS
        ]

    def _monitoring_role(self, name: str) -> aws.iam.Role:
        role_name = physical_name(name, "monitoring", max_length=64)
        role = aws.iam.Role(
            f"{name}-monitoring",
            name=role_name,
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "monitoring.rds.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
            tags=standard_tags(name, role_name),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-monitoring",
            role=role.name,
            policy_arn="arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole",
            opts=pulumi.ResourceOptions(parent=self),
        )
        return role

    def _reader_record(
        self,
        name: str,
        vpc_id: pulumi.Input[str],
        replicas: list[aws.rds.Instance],
        max_lag_seconds: int,
    ) -> pulumi.Output[str]:
        if not replicas:
            return pulumi.Output.from_input("")
        zone_name = f"{physical_name(name)}.internal"
        zone = aws.route53.Zone(
            f"{name}-zone",
            name=zone_name,
            comment="Private names of the database's endpoints",
            vpcs=[{"vpc_id": vpc_id}],
            tags=standard_tags(name, zone_name),
            opts=pulumi.ResourceOptions(parent=self),
        )
        reader_name = f"reader.{zone_name}"
        records = [
            aws.route53.Record(
                f"{name}-reader-{index + 1}",
                zone_id=zone.zone_id,
                name=reader_name,
                type="CNAME",
                ttl=10,
                records=[replica.address],
                set_identifier=f"replica-{index + 1}",
                weighted_routing_policies=[{"weight": 1}],
                health_check_id=self._replica_health_check(
                    name, index, replica, max_lag_seconds
                ).id,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for index, replica in enumerate(replicas)
        ]
        # Derived from the records, so whatever reads the endpoint depends on them.
        return pulumi.Output.all(*[record.fqdn for record in records]).apply(lambda names: names[0])

    def _replica_health_check(
        self, name: str, index: int, replica: aws.rds.Instance, max_lag_seconds: int
    ) -> aws.route53.HealthCheck:
        """Healthy while the replica reports a lag below `max_lag_seconds`."""
        label = f"replica-{index + 1}"
        alarm_name = physical_name(name, label, "unhealthy", max_length=255)
        alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-{label}-unhealthy",
            name=alarm_name,
            alarm_description=(
                f"Read replica {label} is more than {max_lag_seconds} s behind, or publishes "
                "no lag at all (down): the reader endpoint stops sending it connections"
            ),
            namespace="AWS/RDS",
            metric_name="ReplicaLag",
            dimensions={"DBInstanceIdentifier": replica.identifier},
            statistic="Maximum",
            period=60,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            threshold=max_lag_seconds,
            comparison_operator="GreaterThanThreshold",
            # A replica that is down publishes nothing; silence must not look healthy.
            treat_missing_data="breaching",
            tags=standard_tags(name, alarm_name),
            opts=pulumi.ResourceOptions(parent=self),
        )
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        return aws.route53.HealthCheck(
            f"{name}-{label}",
            type="CLOUDWATCH_METRIC",
            cloudwatch_alarm_name=alarm.name,
            cloudwatch_alarm_region=region,
            # Only before the alarm's first evaluation: keep what Route 53 last knew.
            insufficient_data_health_status="LastKnownStatus",
            tags=standard_tags(name, physical_name(name, label, "health")),
            opts=pulumi.ResourceOptions(parent=self),
        )


def _spread(index: int) -> Callable[[list[str]], str]:
    return lambda zones: zones[(index + 1) % len(zones)]


def _connect_arn(instance_arn: str, resource_id: str) -> str:
    """`arn:aws:rds:R:A:db:id` -> `arn:aws:rds-db:R:A:dbuser:<DbiResourceId>/APP_USER`."""
    partition, region, account = instance_arn.split(":")[1], *instance_arn.split(":")[3:5]
    return f"arn:{partition}:rds-db:{region}:{account}:dbuser:{resource_id}/{APP_USER}"
