"""Cloudflare in front of the platform: TLS, caching and filtered traffic.

Both public host names are proxied CNAMEs to the ALB, so clients only ever see
Cloudflare's addresses. The zone encrypts end to end with certificate checks (SSL "Full
(strict)"), redirects HTTP to HTTPS, refuses TLS below 1.2, offers TLS 1.3 and sends HSTS.

Caching (cache rules; when several match, the later rule wins):
1. static assets on the web host are cached at the edge for 30 days (their names carry
   content hashes, so a new release is a new URL);
2. GET requests to the API are eligible for caching, and the origin decides: responses
   the services mark `Cache-Control: public, max-age=N` (course catalogue, lessons) are
   kept N seconds; everything else is `private` or `no-store` and passes through;
3. anything authenticated (an `Authorization` header or a session cookie) or not a GET or
   HEAD bypasses the cache, whatever rule 1 or 2 said.

Filtering: the auth endpoints are rate limited per client IP at the edge (credential
stuffing never reaches the origin) and accept only the methods they serve.

Cloudflare's connections to the origin carry our own client certificate (zone-level
Authenticated Origin Pulls), which the ALB requires: that is `OriginAuthentication`'s,
declared before the ALB, since the ALB may only demand the certificate once the zone
presents it, while this component needs the ALB's name.
"""

from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_cloudflare as cloudflare

from components.type_tokens import CDN

__all__ = ["Cdn", "CdnArgs"]

_STATIC_EXTENSIONS = ("css", "js", "mjs", "png", "jpg", "jpeg", "webp", "avif", "svg", "ico",
                      "woff", "woff2")  # fmt: skip
_MONTH = 30 * 24 * 3600


class CdnArgs(TypedDict):
    """Inputs of `Cdn`."""

    zone_id: pulumi.Input[str]
    """The Cloudflare zone of `domain`."""
    api_hostname: str
    """Host name of the API, e.g. `api.example.com`."""
    web_hostname: str
    """Host name of the web app, e.g. `example.com`."""
    origin: pulumi.Input[str]
    """The origin's DNS name (the ALB)."""
    auth_requests_per_minute: NotRequired[int]
    """Requests per minute one IP may send to `/auth` before it is blocked (default 60)."""


class Cdn(pulumi.ComponentResource):
    """Proxied DNS, strict TLS, cache rules and edge filtering for the platform's hosts."""

    api_hostname: pulumi.Output[str]
    """The API's public host name."""
    web_hostname: pulumi.Output[str]
    """The web app's public host name."""
    zone_id: pulumi.Output[str]
    """The Cloudflare zone."""

    def __init__(
        self, name: str, args: CdnArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(CDN.token, name, None, CDN.options(opts))
        child = pulumi.ResourceOptions(parent=self)
        zone_id = args["zone_id"]
        api, web = args["api_hostname"], args["web_hostname"]
        for label, hostname in (("api", api), ("web", web)):
            cloudflare.DnsRecord(
                f"{name}-{label}",
                zone_id=zone_id,
                name=hostname,
                type="CNAME",
                content=args["origin"],
                proxied=True,
                ttl=1,  # "automatic": required for proxied records
                comment="Proxied through Cloudflare to the ALB",
                opts=child,
            )
        settings: dict[str, Any] = {
            "ssl": "strict",
            "always_use_https": "on",
            "min_tls_version": "1.2",
            "tls_1_3": "on",
            "automatic_https_rewrites": "on",
            "security_header": {
                "strict_transport_security": {
                    "enabled": True,
                    "max_age": 31536000,
                    "include_subdomains": True,
                    "preload": True,
                    "nosniff": True,
                }
            },
        }
        for setting, value in settings.items():
            cloudflare.ZoneSetting(
                f"{name}-{setting.replace('_', '-')}",
                zone_id=zone_id,
                setting_id=setting,
                value=value,
                opts=child,
            )
        self._cache_rules(name, zone_id, api, web)
        self._filters(name, zone_id, api, int(args.get("auth_requests_per_minute", 60)))
        self.api_hostname = pulumi.Output.from_input(api)
        self.web_hostname = pulumi.Output.from_input(web)
        self.zone_id = pulumi.Output.from_input(zone_id)
        self.register_outputs(
            {"api_hostname": self.api_hostname, "web_hostname": self.web_hostname,
             "zone_id": self.zone_id}
        )  # fmt: skip

    def _cache_rules(self, name: str, zone_id: pulumi.Input[str], api: str, web: str) -> None:
        extensions = " ".join(f'"{e}"' for e in _STATIC_EXTENSIONS)
        cloudflare.Ruleset(
            f"{name}-cache",
            zone_id=zone_id,
            name="eduscale cache rules",
            description="Static assets long, public API GETs as the origin says, never private",
            kind="zone",
            phase="http_request_cache_settings",
            rules=[
                {
                    "description": "Static assets: 30 days at the edge",
                    "expression": (
                        f'http.host eq "{web}" and '
                        f"http.request.uri.path.extension in {{{extensions}}}"
                    ),
                    "action": "set_cache_settings",
                    "action_parameters": {
                        "cache": True,
                        "edge_ttl": {"mode": "override_origin", "default": _MONTH},
                        "browser_ttl": {"mode": "respect_origin"},
                    },
                },
                {
                    "description": "Public API GETs: cached only when the origin says public",
                    "expression": (
                        f'http.host eq "{api}" and http.request.method in {{"GET" "HEAD"}}'
                    ),
                    "action": "set_cache_settings",
                    "action_parameters": {
                        "cache": True,
                        "edge_ttl": {"mode": "respect_origin"},
                        "browser_ttl": {"mode": "respect_origin"},
                        "respect_strong_etags": True,
                    },
                },
                {
                    "description": "Authenticated or non-GET: never cached",
                    "expression": (
                        'not http.request.method in {"GET" "HEAD"} or '
                        'len(http.request.headers["authorization"]) > 0 or '
                        'http.cookie contains "session"'
                    ),
                    "action": "set_cache_settings",
                    "action_parameters": {"cache": False},
                },
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _filters(self, name: str, zone_id: pulumi.Input[str], api: str, per_minute: int) -> None:
        auth = f'http.host eq "{api}" and starts_with(http.request.uri.path, "/auth")'
        cloudflare.Ruleset(
            f"{name}-auth-rate-limit",
            zone_id=zone_id,
            name="eduscale auth rate limit",
            description="Credential stuffing stops at the edge",
            kind="zone",
            phase="http_ratelimit",
            rules=[
                {
                    "description": f"More than {per_minute} auth requests a minute from one IP",
                    "expression": auth,
                    "action": "block",
                    "ratelimit": {
                        "characteristics": ["cf.colo.id", "ip.src"],
                        "period": 60,
                        "requests_per_period": per_minute,
                        "mitigation_timeout": 600,
                    },
                }
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        cloudflare.Ruleset(
            f"{name}-firewall",
            zone_id=zone_id,
            name="eduscale firewall",
            description="Only the methods the auth endpoints serve",
            kind="zone",
            phase="http_request_firewall_custom",
            rules=[
                {
                    "description": "Auth endpoints accept GET, POST and OPTIONS only",
                    "expression": (
                        f'{auth} and not http.request.method in {{"GET" "POST" "OPTIONS"}}'
                    ),
                    "action": "block",
                }
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
