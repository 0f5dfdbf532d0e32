/* OpenSSL, loaded when a config first needs TLS rather than at start: linked normally,
 * libssl and libcrypto would cost every proxy ~2 MB of resident memory (their load-time
 * relocations) whether it speaks TLS or not. The TLS code calls OpenSSL by its usual names;
 * this header turns each into a call through a table that wf_ssl_load fills with dlsym.
 * Include it instead of <openssl/...> (after them, in files that define WF_SSL_API_IMPL).
 *
 * Calls OpenSSL's headers make on our behalf from their own inline functions (the typed
 * stack helpers, sk_X509_push and the like) would bind to the real symbols: use the
 * OPENSSL_sk_* functions directly instead. */
#ifndef WF_NET_SSL_API_H
#define WF_NET_SSL_API_H

#include <stddef.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define WF_SSL_FUNCS(X) \
	X(ASN1_STRING_get0_data) \
	X(ASN1_STRING_length) \
	X(BIO_free) \
	X(BIO_new_mem_buf) \
	X(CRYPTO_free) \
	X(CRYPTO_get_ex_new_index) \
	X(CRYPTO_zalloc) \
	X(ERR_clear_error) \
	X(ERR_error_string_n) \
	X(ERR_get_error) \
	X(ERR_reason_error_string) \
	X(EVP_Digest) \
	X(EVP_PKEY_free) \
	X(EVP_PKEY_get_base_id) \
	X(EVP_sha256) \
	X(GENERAL_NAMES_free) \
	X(OPENSSL_sk_new_null) \
	X(OPENSSL_sk_num) \
	X(OPENSSL_sk_pop_free) \
	X(OPENSSL_sk_push) \
	X(OPENSSL_sk_value) \
	X(PEM_read_bio_PrivateKey) \
	X(PEM_read_bio_X509) \
	X(PEM_read_bio_X509_AUX) \
	X(SSL_CTX_clear_options) \
	X(SSL_CTX_ctrl) \
	X(SSL_CTX_free) \
	X(SSL_CTX_get_cert_store) \
	X(SSL_CTX_get_ex_data) \
	X(SSL_CTX_new) \
	X(SSL_CTX_sess_set_new_cb) \
	X(SSL_CTX_set_alpn_protos) \
	X(SSL_CTX_set_alpn_select_cb) \
	X(SSL_CTX_set_cert_cb) \
	X(SSL_CTX_set_cert_verify_callback) \
	X(SSL_CTX_set_cipher_list) \
	X(SSL_CTX_set_ex_data) \
	X(SSL_CTX_set_options) \
	X(SSL_CTX_set_session_id_context) \
	X(SSL_CTX_set_timeout) \
	X(SSL_CTX_set_verify) \
	X(SSL_CTX_set_verify_depth) \
	X(SSL_CTX_use_cert_and_key) \
	X(SSL_SESSION_free) \
	X(SSL_SESSION_is_resumable) \
	X(SSL_certs_clear) \
	X(SSL_ctrl) \
	X(SSL_do_handshake) \
	X(SSL_free) \
	X(SSL_get0_alpn_selected) \
	X(SSL_get0_peer_certificate) \
	X(SSL_get_SSL_CTX) \
	X(SSL_get_error) \
	X(SSL_get_ex_data) \
	X(SSL_get_ex_data_X509_STORE_CTX_idx) \
	X(SSL_get_servername) \
	X(SSL_get_verify_result) \
	X(SSL_is_init_finished) \
	X(SSL_is_server) \
	X(SSL_new) \
	X(SSL_pending) \
	X(SSL_read) \
	X(SSL_select_next_proto) \
	X(SSL_session_reused) \
	X(SSL_set_accept_state) \
	X(SSL_set_connect_state) \
	X(SSL_set_ex_data) \
	X(SSL_set_fd) \
	X(SSL_set_session) \
	X(SSL_shutdown) \
	X(SSL_use_cert_and_key) \
	X(SSL_write) \
	X(TLS_client_method) \
	X(TLS_server_method) \
	X(X509_NAME_ENTRY_get_data) \
	X(X509_NAME_get_entry) \
	X(X509_NAME_get_index_by_NID) \
	X(X509_STORE_CTX_get0_cert) \
	X(X509_STORE_CTX_get_current_cert) \
	X(X509_STORE_CTX_get_error_depth) \
	X(X509_STORE_CTX_get_ex_data) \
	X(X509_STORE_CTX_set_error) \
	X(X509_STORE_add_cert) \
	X(X509_check_private_key) \
	X(X509_digest) \
	X(X509_free) \
	X(X509_get_X509_PUBKEY) \
	X(X509_get_ext_d2i) \
	X(X509_get_subject_name) \
	X(X509_verify_cert) \
	X(X509_verify_cert_error_string) \
	X(i2d_X509_PUBKEY)

struct wf_ssl_api {
#define WF_SSL_MEMBER(f) __typeof__(&f) f;
	WF_SSL_FUNCS(WF_SSL_MEMBER)
#undef WF_SSL_MEMBER
};

extern struct wf_ssl_api wf_ssl;

/* Load libssl.so.3 and find every function (once; main thread, config time). 0, or -1 with
 * err filled (the library or a function is missing). */
int wf_ssl_load(char *err, size_t errlen);

#ifndef WF_SSL_API_IMPL
#define ASN1_STRING_get0_data wf_ssl.ASN1_STRING_get0_data
#define ASN1_STRING_length wf_ssl.ASN1_STRING_length
#define BIO_free wf_ssl.BIO_free
#define BIO_new_mem_buf wf_ssl.BIO_new_mem_buf
#define CRYPTO_free wf_ssl.CRYPTO_free
#define CRYPTO_get_ex_new_index wf_ssl.CRYPTO_get_ex_new_index
#define CRYPTO_zalloc wf_ssl.CRYPTO_zalloc
#define ERR_clear_error wf_ssl.ERR_clear_error
#define ERR_error_string_n wf_ssl.ERR_error_string_n
#define ERR_get_error wf_ssl.ERR_get_error
#define ERR_reason_error_string wf_ssl.ERR_reason_error_string
#define EVP_Digest wf_ssl.EVP_Digest
#define EVP_PKEY_free wf_ssl.EVP_PKEY_free
#define EVP_PKEY_get_base_id wf_ssl.EVP_PKEY_get_base_id
#define EVP_sha256 wf_ssl.EVP_sha256
#define GENERAL_NAMES_free wf_ssl.GENERAL_NAMES_free
#define OPENSSL_sk_new_null wf_ssl.OPENSSL_sk_new_null
#define OPENSSL_sk_num wf_ssl.OPENSSL_sk_num
#define OPENSSL_sk_pop_free wf_ssl.OPENSSL_sk_pop_free
#define OPENSSL_sk_push wf_ssl.OPENSSL_sk_push
#define OPENSSL_sk_value wf_ssl.OPENSSL_sk_value
#define PEM_read_bio_PrivateKey wf_ssl.PEM_read_bio_PrivateKey
#define PEM_read_bio_X509 wf_ssl.PEM_read_bio_X509
#define PEM_read_bio_X509_AUX wf_ssl.PEM_read_bio_X509_AUX
#define SSL_CTX_clear_options wf_ssl.SSL_CTX_clear_options
#define SSL_CTX_ctrl wf_ssl.SSL_CTX_ctrl
#define SSL_CTX_free wf_ssl.SSL_CTX_free
#define SSL_CTX_get_cert_store wf_ssl.SSL_CTX_get_cert_store
#define SSL_CTX_get_ex_data wf_ssl.SSL_CTX_get_ex_data
#define SSL_CTX_new wf_ssl.SSL_CTX_new
#define SSL_CTX_sess_set_new_cb wf_ssl.SSL_CTX_sess_set_new_cb
#define SSL_CTX_set_alpn_protos wf_ssl.SSL_CTX_set_alpn_protos
#define SSL_CTX_set_alpn_select_cb wf_ssl.SSL_CTX_set_alpn_select_cb
#define SSL_CTX_set_cert_cb wf_ssl.SSL_CTX_set_cert_cb
#define SSL_CTX_set_cert_verify_callback wf_ssl.SSL_CTX_set_cert_verify_callback
#define SSL_CTX_set_cipher_list wf_ssl.SSL_CTX_set_cipher_list
#define SSL_CTX_set_ex_data wf_ssl.SSL_CTX_set_ex_data
#define SSL_CTX_set_options wf_ssl.SSL_CTX_set_options
#define SSL_CTX_set_session_id_context wf_ssl.SSL_CTX_set_session_id_context
#define SSL_CTX_set_timeout wf_ssl.SSL_CTX_set_timeout
#define SSL_CTX_set_verify wf_ssl.SSL_CTX_set_verify
#define SSL_CTX_set_verify_depth wf_ssl.SSL_CTX_set_verify_depth
#define SSL_CTX_use_cert_and_key wf_ssl.SSL_CTX_use_cert_and_key
#define SSL_SESSION_free wf_ssl.SSL_SESSION_free
#define SSL_SESSION_is_resumable wf_ssl.SSL_SESSION_is_resumable
#define SSL_certs_clear wf_ssl.SSL_certs_clear
#define SSL_ctrl wf_ssl.SSL_ctrl
#define SSL_do_handshake wf_ssl.SSL_do_handshake
#define SSL_free wf_ssl.SSL_free
#define SSL_get0_alpn_selected wf_ssl.SSL_get0_alpn_selected
#define SSL_get0_peer_certificate wf_ssl.SSL_get0_peer_certificate
#define SSL_get_SSL_CTX wf_ssl.SSL_get_SSL_CTX
#define SSL_get_error wf_ssl.SSL_get_error
#define SSL_get_ex_data wf_ssl.SSL_get_ex_data
#define SSL_get_ex_data_X509_STORE_CTX_idx wf_ssl.SSL_get_ex_data_X509_STORE_CTX_idx
#define SSL_get_servername wf_ssl.SSL_get_servername
#define SSL_get_verify_result wf_ssl.SSL_get_verify_result
#define SSL_is_init_finished wf_ssl.SSL_is_init_finished
#define SSL_is_server wf_ssl.SSL_is_server
#define SSL_new wf_ssl.SSL_new
#define SSL_pending wf_ssl.SSL_pending
#define SSL_read wf_ssl.SSL_read
#define SSL_select_next_proto wf_ssl.SSL_select_next_proto
#define SSL_session_reused wf_ssl.SSL_session_reused
#define SSL_set_accept_state wf_ssl.SSL_set_accept_state
#define SSL_set_connect_state wf_ssl.SSL_set_connect_state
#define SSL_set_ex_data wf_ssl.SSL_set_ex_data
#define SSL_set_fd wf_ssl.SSL_set_fd
#define SSL_set_session wf_ssl.SSL_set_session
#define SSL_shutdown wf_ssl.SSL_shutdown
#define SSL_use_cert_and_key wf_ssl.SSL_use_cert_and_key
#define SSL_write wf_ssl.SSL_write
#define TLS_client_method wf_ssl.TLS_client_method
#define TLS_server_method wf_ssl.TLS_server_method
#define X509_NAME_ENTRY_get_data wf_ssl.X509_NAME_ENTRY_get_data
#define X509_NAME_get_entry wf_ssl.X509_NAME_get_entry
#define X509_NAME_get_index_by_NID wf_ssl.X509_NAME_get_index_by_NID
#define X509_STORE_CTX_get0_cert wf_ssl.X509_STORE_CTX_get0_cert
#define X509_STORE_CTX_get_current_cert wf_ssl.X509_STORE_CTX_get_current_cert
#define X509_STORE_CTX_get_error_depth wf_ssl.X509_STORE_CTX_get_error_depth
#define X509_STORE_CTX_get_ex_data wf_ssl.X509_STORE_CTX_get_ex_data
#define X509_STORE_CTX_set_error wf_ssl.X509_STORE_CTX_set_error
#define X509_STORE_add_cert wf_ssl.X509_STORE_add_cert
#define X509_check_private_key wf_ssl.X509_check_private_key
#define X509_digest wf_ssl.X509_digest
#define X509_free wf_ssl.X509_free
#define X509_get_X509_PUBKEY wf_ssl.X509_get_X509_PUBKEY
#define X509_get_ext_d2i wf_ssl.X509_get_ext_d2i
#define X509_get_subject_name wf_ssl.X509_get_subject_name
#define X509_verify_cert wf_ssl.X509_verify_cert
#define X509_verify_cert_error_string wf_ssl.X509_verify_cert_error_string
#define i2d_X509_PUBKEY wf_ssl.i2d_X509_PUBKEY
#endif

#endif
