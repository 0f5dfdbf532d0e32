/* weft translate: what the control plane would send one proxy, from Istio files, without a
 * control plane — the debugging view istioctl's proxy-config gives, and a way to run a sidecar
 * from Istio configuration alone:
 *
 *   weft translate -f ISTIO.yaml... --node NODE.yaml [--register NODE.yaml]... [--bootstrap [--admin-port N]]
 *
 * --node is the proxy's Node (id, metadata) in YAML; --register adds other sidecars to the
 * registry as if they had connected (their workloads become endpoints). Prints JSON: the
 * resources as a DiscoveryResponse-shaped list (`resources:` of Any, what `weft control
 * --envoy-resources` reads), or with --bootstrap one static Envoy bootstrap for `weft proxy -c`. */
#include "cli/cli.h"
#include "control/mesh.h"
#include "control/store.h"
#include "control/translate.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "xds/json.h"
#include "xds/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
	fprintf(stderr, "usage: weft translate -f ISTIO.yaml... --node NODE.yaml [--register NODE.yaml]...\n"
	                "                      [--bootstrap [--admin-port N]]\n");
}

static Envoy__Config__Core__V3__Node *read_node(const char *path)
{
	char err[512];
	Envoy__Config__Core__V3__Node *n = wf_node_from_yaml(path, NULL, err, sizeof(err));
	if (!n)
		fprintf(stderr, "weft: %s\n", err);
	return n;
}

static void warn(void *ctx, const char *msg)
{
	fprintf(stderr, "weft: warning: %s\n", msg);
}

static void add(void *ctx, const char *type, const char *name, ProtobufCMessage *msg)
{
	Envoy__Service__Discovery__V3__DiscoveryResponse *r = ctx;
	Google__Protobuf__Any *a = (void *)wf_proto_new(&google__protobuf__any__descriptor);
	a->type_url = strdup(type);
	a->value.len = protobuf_c_message_get_packed_size(msg);
	a->value.data = malloc(a->value.len + 1);
	protobuf_c_message_pack(msg, a->value.data);
	wf_proto_free(msg);
	r->resources = realloc(r->resources, (r->n_resources + 1) * sizeof(*r->resources));
	r->resources[r->n_resources++] = a;
}

int wf_cmd_translate(int argc, char **argv)
{
	const char *node_path = NULL;
	const char **files = calloc((size_t)argc, sizeof(*files)), **regs = calloc((size_t)argc, sizeof(*regs));
	size_t n_files = 0, n_regs = 0;
	int bootstrap = 0;
	unsigned admin_port = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-f") && i + 1 < argc)
			files[n_files++] = argv[++i];
		else if (!strcmp(argv[i], "--node") && i + 1 < argc)
			node_path = argv[++i];
		else if (!strcmp(argv[i], "--register") && i + 1 < argc)
			regs[n_regs++] = argv[++i];
		else if (!strcmp(argv[i], "--bootstrap"))
			bootstrap = 1;
		else if (!strcmp(argv[i], "--admin-port") && i + 1 < argc)
			admin_port = (unsigned)atoi(argv[++i]);
		else if (argv[i][0] != '-')
			files[n_files++] = argv[i];
		else {
			fprintf(stderr, "weft: translate: unknown option '%s'\n", argv[i]);
			usage();
			free(files);
			free(regs);
			return 2;
		}
	}
	int status = 1;
	struct wf_store *store = wf_store_new();
	struct wf_registry *reg = wf_registry_new();
	struct wf_mesh *mesh = NULL;
	Envoy__Config__Core__V3__Node *node = NULL;
	struct wf_proxy_info p = {0};
	char err[1024];
	if (!node_path || !n_files || admin_port > 65535) {
		usage();
		status = 2;
		goto out;
	}
	for (size_t i = 0; i < n_files; i++) {
		struct wf_errs errs = {0};
		int rc = wf_store_load_file(store, files[i], &errs);
		if (rc == 0) { /* the store's answer for a file that is not there */
			fprintf(stderr, "weft: %s: cannot read it\n", files[i]);
			goto out;
		}
		if (rc < 0) {
			for (size_t k = 0; k < errs.n; k++)
				fprintf(stderr, "weft: %s\n", errs.v[k]);
			wf_errs_free(&errs);
			goto out;
		}
		wf_errs_free(&errs);
	}
	for (size_t i = 0; i < n_regs; i++) {
		Envoy__Config__Core__V3__Node *rn = read_node(regs[i]);
		int rc = rn ? wf_registry_add_node(reg, rn, err, sizeof(err)) : -1;
		if (rn && rc < 0)
			fprintf(stderr, "weft: %s: %s\n", regs[i], err);
		if (rn)
			wf_proto_free(&rn->base);
		if (rc < 0)
			goto out;
	}
	if (!(node = read_node(node_path)))
		goto out;
	/* the proxy itself registers its workload, as it would by connecting */
	if (wf_registry_add_node(reg, node, err, sizeof(err)) < 0 || wf_proxy_from_node(node, &p, err, sizeof(err)) < 0) {
		fprintf(stderr, "weft: %s: %s\n", node_path, err);
		goto out;
	}
	mesh = wf_mesh_build(store, reg);
	ProtobufCMessage *msg = NULL;
	if (bootstrap) {
		if (wf_translate_bootstrap(mesh, &p, admin_port, 0, &msg, err, sizeof(err), warn, NULL) < 0) {
			fprintf(stderr, "weft: %s\n", err);
			goto out;
		}
	} else {
		msg = wf_proto_new(&envoy__service__discovery__v3__discovery_response__descriptor);
		if (wf_translate(mesh, &p, add, msg, err, sizeof(err), warn) < 0) {
			fprintf(stderr, "weft: %s\n", err);
			wf_proto_free(msg);
			goto out;
		}
	}
	struct wf_jbuf j = {0};
	if (wf_json_message(&j, msg, 2) == 0) {
		printf("%s\n", j.p);
		status = 0;
	}
	free(j.p);
	wf_proto_free(msg);
out:
	wf_proxy_info_clear(&p);
	if (node)
		wf_proto_free(&node->base);
	wf_mesh_free(mesh);
	wf_registry_free(reg);
	wf_store_free(store);
	free(files);
	free(regs);
	return status;
}
