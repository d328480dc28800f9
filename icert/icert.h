/*
 * icert: CA and endpoint certificate generation (support.md section 5),
 * the library behind the icert command and the TLS tests.
 *
 * What it makes, as the original's icertpkg:
 *   - keys: Ed25519 or RSA 4096, written as PKCS#8 PEM ("PRIVATE KEY");
 *   - certificates: X.509 v3 PEM, random 256-bit serial, validity
 *     [not_before, not_before + ttl]; KeyUsage DigitalSignature (+ CertSign
 *     for a CA), ExtKeyUsage ClientAuth + ServerAuth, BasicConstraints
 *     (CA true for the CA, false otherwise), SANs from dns and ips
 *     (endpoint only), subject as given (also the issuer of a CA), except
 *     that a CA given no subject fields gets CN "RootCA": an empty issuer
 *     name makes OpenSSL-based clients such as curl refuse its certificates;
 *   - files with mode 0400; when cert and key paths are equal, one file
 *     holds the certificate followed by the key.
 *
 * Errors: 0 or a negative errno; err (may be NULL) receives a one-line
 * reason, e.g. "open /x/ca.pem: Permission denied", "invalid IP address
 * \"1.2.3\"".
 */
#ifndef PFS_ICERT_H
#define PFS_ICERT_H

#include <stddef.h>
#include <stdint.h>

typedef enum { ICERT_ED25519, ICERT_RSA } icert_alg;

typedef struct {
  const char *const *v;
  size_t n;
} icert_list;

typedef struct {
  const char *common_name; /* may be NULL or "" */
  icert_list organization, country, province, locality, street_address, postal_code;
} icert_subject;

typedef struct {
  icert_alg alg;
  icert_subject subject;
  uint64_t ttl_s;      /* validity length in seconds, > 0 */
  int64_t not_before;  /* Unix seconds; 0 = now */
  const char *const *dns; /* endpoint SANs (ignored for a CA) */
  size_t ndns;
  const char *const *ips; /* IPv4 or IPv6 literals */
  size_t nips;
} icert_options;

/* PEM text, malloc'd and NUL-terminated. */
typedef struct {
  char *cert;
  size_t cert_len;
  char *key;
  size_t key_len;
} icert_pem;

/* Self-signed CA. cert_path/key_path may be NULL (not written); out may
 * be NULL (not returned); otherwise *out is overwritten (not freed first)
 * and the caller frees it with icert_pem_free. */
int icert_gen_ca(const icert_options *o, const char *cert_path, const char *key_path,
                 icert_pem *out, char *err, size_t errlen);
/* Endpoint certificate signed by ca (PEM certificate and key). At least one
 * DNS name or IP is required (-EINVAL). */
int icert_gen_endpoint(const icert_options *o, const icert_pem *ca, const char *cert_path,
                       const char *key_path, icert_pem *out, char *err, size_t errlen);
/* Read a certificate file and a key file (may be the same file). */
int icert_read_pem(const char *cert_path, const char *key_path, icert_pem *out, char *err,
                   size_t errlen);
void icert_pem_free(icert_pem *p);

#endif
