/* Fields the .proto subset declares (so that configs using them decode, and errors can name
 * them) but that the data plane does not implement yet. A config that sets one is refused,
 * with the field's position: never silently ignored. An entry goes away when its feature lands.
 *
 * One walker visits every message of the document, Any payloads included. */
#include "proxy/compile.h"

#include "xds/cfgdoc.h"
#include "xds/registry.h"

#include <string.h>

struct pending {
	const char *message;   /* full protobuf name */
	const char *field;
	const char *why;       /* what to say; "not supported yet" when NULL */
};

static const struct pending pending[] = {
	{"envoy.config.cluster.v3.Cluster.CommonLbConfig", "zone_aware_lb_config", NULL},
	{"envoy.config.cluster.v3.OutlierDetection", "enforcing_local_origin_success_rate", NULL},
	{"envoy.config.cluster.v3.OutlierDetection", "enforcing_failure_percentage_local_origin", NULL},
	{"envoy.config.cluster.v3.Cluster", "respect_dns_ttl",
	 "not supported (the system resolver does not report TTLs): names are re-resolved every dns_refresh_rate"},
	{"envoy.config.core.v3.HealthCheck", "grpc_health_check", NULL},
	{"envoy.config.core.v3.HealthCheck", "custom_health_check", NULL},
	{"envoy.config.core.v3.HealthCheck", "alt_port", NULL},
	{"envoy.config.core.v3.HealthCheck", "event_log_path", "not supported yet (health check event logs)"},
	{"envoy.config.core.v3.HealthCheck", "always_log_health_check_failures", "not supported yet (health check event logs)"},
	{"envoy.config.core.v3.HealthCheck", "tls_options", "not supported yet (checks use the cluster's TLS settings)"},
	{"envoy.config.core.v3.HealthCheck", "transport_socket_match_criteria",
	 "not supported (no transport_socket_matches: checks use the cluster's transport_socket)"},
	{"envoy.config.core.v3.HealthCheck.HttpHealthCheck", "service_name_matcher", NULL},
	{"envoy.config.route.v3.WeightedCluster.ClusterWeight", "typed_per_filter_config", NULL},
	{"envoy.config.route.v3.RateLimit", "disable_key", "not supported (there is no runtime)"},
	{"envoy.config.core.v3.HttpProtocolOptions", "max_connection_duration", NULL},
	{"envoy.config.core.v3.HttpProtocolOptions", "max_stream_duration", NULL},
	{"envoy.config.core.v3.HttpProtocolOptions", "headers_with_underscores_action", NULL},
	{"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.UpgradeConfig", "filters",
	 "not supported yet (upgrades run through the connection manager's http_filters)"},
	{"envoy.config.route.v3.RouteAction.UpgradeConfig.ConnectConfig", "allow_post",
	 "not supported yet (only CONNECT requests are terminated)"},
	{"envoy.config.listener.v3.FilterChainMatch", "destination_port", NULL},
	{"envoy.config.listener.v3.Listener", "api_listener",
	 "not supported (a listener of a proxy has an address; api_listener is for proxyless gRPC clients)"},
	{"envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector", "enable_ja3_fingerprinting", NULL},
#define TLS "envoy.extensions.transport_sockets.tls.v3."
#define SDS "not supported (SDS comes with the control plane): use tls_certificates / validation_context with files"
	{TLS "UpstreamTlsContext", "allow_renegotiation", "not supported (renegotiation is refused)"},
	{TLS "UpstreamTlsContext", "auto_host_sni", NULL},
	{TLS "UpstreamTlsContext", "auto_sni_san_validation", NULL},
	{TLS "DownstreamTlsContext", "session_ticket_keys_sds_secret_config", SDS},
	{TLS "DownstreamTlsContext", "ocsp_staple_policy", "not supported yet (no OCSP stapling)"},
	{TLS "CommonTlsContext", "tls_certificate_sds_secret_configs", SDS},
	{TLS "CommonTlsContext", "validation_context_sds_secret_config", SDS},
	{TLS "CommonTlsContext", "combined_validation_context", SDS},
	{TLS "CommonTlsContext", "tls_certificate_provider_instance", "not supported (no certificate providers)"},
	{TLS "CommonTlsContext", "custom_tls_certificate_selector",
	 "not supported (certificates are chosen by SNI and key type, as Envoy's default selector)"},
	{TLS "CommonTlsContext", "custom_handshaker", "not supported"},
	{TLS "CommonTlsContext", "key_log", "not supported yet"},
	{TLS "CommonTlsContext", "read_ahead_buffer_size", "not supported yet"},
	{TLS "TlsParameters", "compliance_policies", "not supported (FIPS policies are BoringSSL's)"},
	{TLS "TlsCertificate", "password", "not supported yet (use an unencrypted key)"},
	{TLS "TlsCertificate", "ocsp_staple", "not supported yet (no OCSP stapling)"},
	{TLS "TlsCertificate", "pkcs12", "not supported yet (use PEM)"},
	{TLS "TlsCertificate", "watched_directory",
	 "not supported (the certificate and key files themselves are watched: a change reloads them)"},
	{TLS "TlsCertificate", "private_key_provider", "not supported (keys are PEM files or inline)"},
	{TLS "TlsCertificate", "signed_certificate_timestamp", "not supported yet"},
	{TLS "CertificateValidationContext", "crl", NULL},
	{TLS "CertificateValidationContext", "only_verify_leaf_cert_crl", "not supported yet (no CRLs)"},
	{TLS "CertificateValidationContext", "allow_expired_certificate", NULL},
	{TLS "CertificateValidationContext", "trust_chain_verification", NULL},
	{TLS "CertificateValidationContext", "ca_certificate_provider_instance", "not supported (no certificate providers)"},
	{TLS "CertificateValidationContext", "system_root_certs", "not supported yet (give trusted_ca)"},
	{TLS "CertificateValidationContext", "watched_directory",
	 "not supported (the trusted_ca file itself is watched: a change reloads it)"},
	{TLS "CertificateValidationContext", "match_subject_alt_names",
	 "not supported (deprecated in Envoy: use match_typed_subject_alt_names)"},
	{TLS "CertificateValidationContext", "require_signed_certificate_timestamp", "not supported yet"},
	{TLS "CertificateValidationContext", "custom_validator_config", "not supported"},
	{TLS "SubjectAltNameMatcher", "oid", "not supported yet (OTHER_NAME SANs)"},
#undef SDS
#undef TLS
};

static const char *pending_why(const char *message, const char *field)
{
	for (size_t i = 0; i < sizeof(pending) / sizeof(pending[0]); i++)
		if (!strcmp(pending[i].message, message) && !strcmp(pending[i].field, field))
			return pending[i].why ? pending[i].why : "not supported yet";
	return NULL;
}

static int walk(struct wf_compile *c, const ProtobufCMessage *m, int depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	if (depth > 64)
		return 0;
	if (!strcmp(d->name, "google.protobuf.Any")) {
		char err[256];
		const ProtobufCMessage *in = wf_cfgdoc_any(c->doc, m, err, sizeof(err));
		return in ? walk(c, in, depth + 1) : 0; /* unknown types are refused where they are used */
	}
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (!wf_proto_field_is_set(m, f))
			continue;
		const char *why = pending_why(d->name, f->name);
		if (why)
			return wf_cfg_err(c->doc, c->err, c->errlen, m, f->name, "%s is %s", f->name, why);
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		const char *base = (const char *)m + f->offset;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
			ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)base;
			for (size_t k = 0; k < n; k++)
				if (arr[k] && walk(c, arr[k], depth + 1) < 0)
					return -1;
		} else {
			const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)base;
			if (sub && walk(c, sub, depth + 1) < 0)
				return -1;
		}
	}
	return 0;
}

int wf_compile_refuse_pending(struct wf_compile *c, const ProtobufCMessage *root)
{
	return walk(c, root, 0);
}
