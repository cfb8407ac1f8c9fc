"""The Auth service on the cluster: accounts, tokens and profiles (database and Redis)."""

from __future__ import annotations

from components.microservice import Microservice
from services.auth.settings import AuthSettings
from stacks.workloads.context import HTTPS_OUT, WorkloadContext
from stacks.workloads.deploy import http_service
from stacks.workloads.pod_env import workload_env
from stacks.workloads.roles import workload_role
from stacks.workloads.sections import core_env, tracing_env

__all__ = ["build_auth"]


def build_auth(context: WorkloadContext) -> Microservice:
    """Declare the Auth service."""
    return http_service(
        context,
        "auth",
        context.config.services.auth,
        workload_env(AuthSettings, core_env(context), tracing_env(context, "auth")),
        # Auth emits no events: no topic in its role, no path to the brokers.
        workload_role(context, "auth", kafka=None),
        egress_to=[context.data_stores, HTTPS_OUT],
    )
