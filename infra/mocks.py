"""What the offline engine answers in place of the cloud providers.

The answers are shaped like the providers' real ones (camelCase state, AWS-style ids and
ARNs, the outputs our components read), so the program runs end to end and every
`apply` executes. They are deterministic, derived from the resource's logical name, so
two previews of the same program produce the same graph. An invoke we have not taught
the engine raises instead of returning an empty answer, which would let a component
silently build on nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pulumi

__all__ = ["ACCOUNT_ID", "OfflineMocks", "UnmockedInvokeError", "kubernetes_auto_name"]

ACCOUNT_ID = "123456789012"
"""The AWS account the offline engine pretends to deploy into (AWS's documentation id)."""

_ZONE_SUFFIXES = "abcdef"

# The prefix AWS puts on each kind of id; types absent here get `<name>-id`-style ids.
_ID_PREFIXES = {
    "aws:ec2/vpc:Vpc": "vpc",
    "aws:ec2/subnet:Subnet": "subnet",
    "aws:ec2/internetGateway:InternetGateway": "igw",
    "aws:ec2/natGateway:NatGateway": "nat",
    "aws:ec2/eip:Eip": "eipalloc",
    "aws:ec2/routeTable:RouteTable": "rtb",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc",
    "aws:ec2/securityGroup:SecurityGroup": "sg",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "sg",
    "aws:ec2/flowLog:FlowLog": "fl",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr",
}


_Outputs = Callable[[str, dict[str, Any], str], dict[str, Any]]
"""Computes a resource type's outputs from its logical name, inputs and id."""


class UnmockedInvokeError(RuntimeError):
    """The program called a provider function the offline engine cannot answer."""


def _hex(seed: str, length: int = 17) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def kubernetes_auto_name(name: str) -> str:
    """The `metadata.name` of an object whose program left it unset.

    The Kubernetes provider autonames such an object `<logical name>-<random suffix>`;
    offline the suffix is derived from the logical name, so every preview agrees with
    itself and with the objects that reference the name (`eduscale preview --manifests`
    writes the same name).
    """
    return f"{name}-{_hex(name, 8)}"


def _kubernetes_auto_named(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The provider's answer for an object: its metadata with the autoname, if unnamed."""
    metadata = dict(inputs.get("metadata") or {})
    if "name" in metadata:
        return {}
    metadata["name"] = kubernetes_auto_name(name)
    return {"metadata": metadata}


def _built_image(inputs: dict[str, Any]) -> dict[str, Any]:
    """What BuildKit reports after a push: the digest of the bytes, and `<tag>@<digest>`.

    The digest stands for the image's content, so it is derived from every build input:
    the same inputs give the same digest, a changed release tag (new sources) another.
    """
    digest = "sha256:" + hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    tags = inputs.get("tags") or []
    return {
        "digest": digest,
        "ref": f"{tags[0]}@{digest}" if tags else "",
        "contextHash": _hex(json.dumps(inputs.get("context"), sort_keys=True), 64),
    }


def _pem(label: str, seed: str) -> str:
    """A PEM block shaped like the real one, its body derived from `seed`."""
    body = hashlib.sha256(seed.encode()).hexdigest() * 2
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


def _certificate(name: str, inputs: dict[str, Any], _: str) -> dict[str, Any]:
    """What the TLS provider returns for a certificate: the PEM and its validity window."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = start + timedelta(hours=int(inputs.get("validityPeriodHours", 24)))
    return {
        "certPem": _pem("CERTIFICATE", "cert" + name),
        "validityStartTime": start.isoformat().replace("+00:00", "Z"),
        "validityEndTime": end.isoformat().replace("+00:00", "Z"),
        "readyForRenewal": False,
    }


class OfflineMocks(pulumi.runtime.Mocks):
    """Deterministic provider answers for one offline run in `region`."""

    def __init__(self, region: str) -> None:
        self.region = region
        self._outputs = self._output_table()
        self._invokes: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "aws:index/getAvailabilityZones:getAvailabilityZones": self._availability_zones,
            "aws:index/getCallerIdentity:getCallerIdentity": self._caller_identity,
            "aws:index/getPartition:getPartition": self._partition,
            "aws:index/getRegion:getRegion": self._region,
            "aws:elb/getServiceAccount:getServiceAccount": self._elb_service_account,
            "aws:ecr/getAuthorizationToken:getAuthorizationToken": self._ecr_token,
        }

    # -- resources ---------------------------------------------------------------------

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        """A deterministic id, and the inputs plus what the provider would compute."""
        resource_id = self._resource_id(args.typ, args.name)
        state: dict[str, Any] = dict(args.inputs)
        if args.typ.startswith("aws:"):
            state.setdefault("arn", self._arn(args.typ, args.inputs, resource_id))
        state.update(self._computed(args.typ, args.name, args.inputs, resource_id))
        return resource_id, state

    def _resource_id(self, typ: str, name: str) -> str:
        prefix = _ID_PREFIXES.get(typ)
        if prefix is not None:
            return f"{prefix}-{_hex(typ + name)}"
        return f"{name}-{_hex(typ + name, 8)}"

    def _arn(self, typ: str, inputs: dict[str, Any], resource_id: str) -> str:
        # aws:<service>/<kind>:<Kind> -> arn:aws:<service>:<region>:<account>:<kind>/<id>
        package, _, rest = typ.partition(":")
        module = rest.split("/", 1)[0]
        kind = rest.split(":", 1)[0].split("/")[-1].lower()
        service = {"cloudwatch": "logs", "msk": "kafka"}.get(module, module)
        region = "" if service == "iam" else self.region
        physical = inputs.get("name") or resource_id
        return f"arn:{package}:{service}:{region}:{ACCOUNT_ID}:{kind}/{physical}"

    def _computed(
        self, typ: str, name: str, inputs: dict[str, Any], resource_id: str
    ) -> dict[str, Any]:
        """Outputs a provider computes that our program reads."""
        handler = self._outputs.get(typ)
        if handler is not None:
            return handler(name, inputs, resource_id)
        if typ.startswith("kubernetes:") and not typ.startswith("kubernetes:helm"):
            return _kubernetes_auto_named(name, inputs)
        return {}

    def _output_table(self) -> dict[str, _Outputs]:
        region, arn = self.region, f":{self.region}:{ACCOUNT_ID}:"

        def eip(name: str, _: dict[str, Any], rid: str) -> dict[str, Any]:
            seed = int(_hex(name, 4), 16)
            return {"allocationId": rid, "publicIp": f"203.0.113.{seed % 254 + 1}"}

        def replication_group(name: str, inputs: dict[str, Any], _: str) -> dict[str, Any]:
            group = inputs["replicationGroupId"]
            host = f"{group}.{_hex(name, 6)}.{region}.cache.amazonaws.com"
            return {
                "configurationEndpointAddress": f"clustercfg.{host}",
                "port": inputs.get("port", 6379),
                "arn": f"arn:aws:elasticache{arn}replicationgroup:{group}",
            }

        def oidc_provider(_: str, inputs: dict[str, Any], __: str) -> dict[str, Any]:
            issuer = str(inputs["url"]).removeprefix("https://")
            return {"arn": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{issuer}"}

        return {
            "aws:ec2/eip:Eip": eip,
            "aws:kms/key:Key": lambda _, __, rid: {
                "keyId": rid,
                "arn": f"arn:aws:kms{arn}key/{rid}",
            },
            "aws:cloudwatch/logGroup:LogGroup": lambda _, inputs, rid: {
                "arn": f"arn:aws:logs{arn}log-group:{inputs.get('name', rid)}"
            },
            "aws:iam/role:Role": lambda _, inputs, rid: {
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{inputs.get('name', rid)}"
            },
            "aws:rds/instance:Instance": lambda _, inputs, rid: self._rds_instance(inputs, rid),
            "aws:elasticache/replicationGroup:ReplicationGroup": replication_group,
            "aws:msk/cluster:Cluster": lambda name, inputs, _: self._msk_cluster(name, inputs),
            "aws:msk/configuration:Configuration": lambda *_: {"latestRevision": 1},
            "aws:route53/zone:Zone": lambda name, *_: {"zoneId": f"Z{_hex(name, 20).upper()}"},
            "aws:route53/record:Record": lambda _, inputs, __: {"fqdn": inputs["name"]},
            "random:index/randomPassword:RandomPassword": lambda name, inputs, _: {
                "result": _hex("password" + name, int(inputs.get("length", 32)))
            },
            "aws:eks/cluster:Cluster": lambda name, inputs, _: self._eks_cluster(name, inputs),
            "aws:iam/openIdConnectProvider:OpenIdConnectProvider": oidc_provider,
            "aws:acm/certificate:Certificate": lambda _, inputs, rid: {
                "arn": f"arn:aws:acm{arn}certificate/{rid}",
                "domainValidationOptions": [
                    {
                        "domainName": host,
                        "resourceRecordName": f"_{_hex(host, 32)}.{host}.",
                        "resourceRecordType": "CNAME",
                        "resourceRecordValue": f"_{_hex(host + 'v', 32)}.acm-validations.aws.",
                    }
                    for host in [inputs["domainName"], *inputs.get("subjectAlternativeNames", [])]
                ],
            },
            "aws:lb/loadBalancer:LoadBalancer": lambda name, inputs, rid: {
                "arn": f"arn:aws:elasticloadbalancing{arn}loadbalancer/app/{inputs['name']}/{rid}",
                "dnsName": f"{inputs['name']}-{int(_hex(name, 8), 16)}.{region}.elb.amazonaws.com",
                "zoneId": "Z32O12XQLNTSW2",
            },
            "aws:lb/targetGroup:TargetGroup": lambda _, inputs, rid: {
                "arn": f"arn:aws:elasticloadbalancing{arn}targetgroup/{inputs['name']}/{rid}",
            },
            "aws:s3/bucket:Bucket": lambda _, inputs, __: {
                "arn": f"arn:aws:s3:::{inputs['bucket']}",
                "bucket": inputs["bucket"],
            },
            "aws:ec2/launchTemplate:LaunchTemplate": lambda _, __, rid: {
                "latestVersion": 1,
                "id": rid,
            },
            "aws:ecr/repository:Repository": lambda _, inputs, __: {
                "registryId": ACCOUNT_ID,
                "repositoryUrl": f"{ACCOUNT_ID}.dkr.ecr.{region}.amazonaws.com/{inputs['name']}",
            },
            "docker-build:index:Image": lambda _, inputs, __: _built_image(inputs),
            "aws:lb/trustStore:TrustStore": lambda _, inputs, rid: {
                "arn": f"arn:aws:elasticloadbalancing{arn}truststore/{inputs['name']}/{rid}",
            },
            "aws:s3/bucketObjectv2:BucketObjectv2": lambda name, inputs, _: {
                "versionId": _hex("version" + name + str(inputs.get("content")), 32),
                "etag": _hex(str(inputs.get("content")), 32),
            },
            "tls:index/privateKey:PrivateKey": lambda name, *_: {
                "privateKeyPem": _pem("PRIVATE KEY", "key" + name),
                "publicKeyPem": _pem("PUBLIC KEY", "public" + name),
            },
            "tls:index/certRequest:CertRequest": lambda name, *_: {
                "certRequestPem": _pem("CERTIFICATE REQUEST", "csr" + name),
            },
            "tls:index/selfSignedCert:SelfSignedCert": _certificate,
            "tls:index/locallySignedCert:LocallySignedCert": _certificate,
        }

    def _eks_cluster(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        oidc_id = _hex("oidc" + name, 32).upper()
        return {
            "endpoint": f"https://{oidc_id}.gr7.{self.region}.eks.amazonaws.com",
            "certificateAuthority": {"data": "TFMwdExTMUNSVWRKVGlCRFJWSlVTVVpKUTBGVVJTMHRMUzB0"},
            "identities": [
                {
                    "oidcs": [
                        {"issuer": f"https://oidc.eks.{self.region}.amazonaws.com/id/{oidc_id}"}
                    ]
                }
            ],
            "vpcConfig": {
                **inputs.get("vpcConfig", {}),
                "clusterSecurityGroupId": f"sg-{_hex('cluster-sg' + name)}",
            },
            "arn": f"arn:aws:eks:{self.region}:{ACCOUNT_ID}:cluster/{inputs['name']}",
        }

    def _rds_instance(self, inputs: dict[str, Any], resource_id: str) -> dict[str, Any]:
        identifier = inputs.get("identifier", resource_id)
        address = f"{identifier}.c{_hex(identifier, 11)}.{self.region}.rds.amazonaws.com"
        state: dict[str, Any] = {
            "address": address,
            "endpoint": f"{address}:5432",
            "port": 5432,
            "identifier": identifier,
            "resourceId": f"db-{_hex(identifier, 26).upper()}",
            "arn": f"arn:aws:rds:{self.region}:{ACCOUNT_ID}:db:{identifier}",
        }
        if inputs.get("manageMasterUserPassword"):
            state["masterUserSecrets"] = [
                {
                    "secretArn": f"arn:aws:secretsmanager:{self.region}:{ACCOUNT_ID}:secret:"
                    f"rds!db-{_hex(identifier, 8)}",
                    "kmsKeyId": inputs.get("masterUserSecretKmsKeyId", ""),
                    "secretStatus": "active",
                }
            ]
        return state

    def _msk_cluster(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        cluster = inputs["clusterName"]
        suffix = f"{_hex(name, 6)}.c2.kafka.{self.region}.amazonaws.com"
        brokers = int(inputs.get("numberOfBrokerNodes", 3))
        return {
            "arn": f"arn:aws:kafka:{self.region}:{ACCOUNT_ID}:cluster/{cluster}/{_hex(name, 8)}",
            "bootstrapBrokersSaslIam": ",".join(
                f"b-{i + 1}.{cluster}.{suffix}:9098" for i in range(brokers)
            ),
            "currentVersion": "K3AEGXETSR30VB",
        }

    # -- invokes -----------------------------------------------------------------------

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        """Answer a known provider function, or raise `UnmockedInvokeError`."""
        handler = self._invokes.get(args.token)
        if handler is None:
            raise UnmockedInvokeError(
                f"the offline engine has no answer for the provider function {args.token}; "
                "teach it in infra/mocks.py (OfflineMocks) before calling it"
            )
        return handler(args.args)

    def _availability_zones(self, _: dict[str, Any]) -> dict[str, Any]:
        names = [f"{self.region}{suffix}" for suffix in _ZONE_SUFFIXES]
        return {
            "id": self.region,
            "names": names,
            "zoneIds": [f"{self.region[:3]}{self.region[-1]}-az{i + 1}" for i in range(len(names))],
            "groupNames": [self.region] * len(names),
        }

    def _caller_identity(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": ACCOUNT_ID,
            "accountId": ACCOUNT_ID,
            "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/offline-preview",
            "userId": "AIDAOFFLINEPREVIEW",
        }

    def _partition(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "aws",
            "partition": "aws",
            "dnsSuffix": "amazonaws.com",
            "reverseDnsPrefix": "com.amazonaws",
        }

    def _elb_service_account(self, _: dict[str, Any]) -> dict[str, Any]:
        # The account ELB delivers access logs from in eu-west-1 (per AWS's documentation).
        return {"id": "156460612806", "arn": "arn:aws:iam::156460612806:root"}

    def _ecr_token(self, args: dict[str, Any]) -> dict[str, Any]:
        registry = args.get("registryId", ACCOUNT_ID)
        return {
            "id": self.region,
            "authorizationToken": "QVdTOm9mZmxpbmUtcHJldmlldw==",  # base64 "AWS:offline-preview"
            "userName": "AWS",
            "password": "offline-preview",
            "proxyEndpoint": f"https://{registry}.dkr.ecr.{self.region}.amazonaws.com",
            "expiresAt": "2038-01-19T03:14:07Z",
        }

    def _region(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self.region,
            "region": self.region,
            "name": self.region,
            "endpoint": f"ec2.{self.region}.amazonaws.com",
            "description": self.region,
        }
