/* Certificate generation with OpenSSL (support.md 5.2). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "icert.h"

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return rc;
}

static int ossl_fail(char *err, size_t errlen, const char *what) {
  char buf[256];
  unsigned long e = ERR_get_error();
  if (e)
    ERR_error_string_n(e, buf, sizeof buf);
  else
    snprintf(buf, sizeof buf, "unknown error");
  ERR_clear_error();
  return fail(err, errlen, -EIO, "%s: %s", what, buf);
}

static EVP_PKEY *gen_key(icert_alg alg) {
  if (alg == ICERT_ED25519)
    return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
}

/* RDN order as Go's pkix.Name.ToRDNSequence. */
static int add_subject(X509_NAME *n, const icert_subject *s) {
  const struct {
    const char *field;
    icert_list l;
  } parts[] = {
      {"C", s->country},        {"O", s->organization},  {"L", s->locality},
      {"ST", s->province},      {"street", s->street_address},
      {"postalCode", s->postal_code},
  };
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
    for (size_t j = 0; j < parts[i].l.n; j++)
      if (!X509_NAME_add_entry_by_txt(n, parts[i].field, MBSTRING_UTF8,
                                      (const unsigned char *)parts[i].l.v[j], -1, -1, 0))
        return -EINVAL;
  if (s->common_name && *s->common_name &&
      !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                                  (const unsigned char *)s->common_name, -1, -1, 0))
    return -EINVAL;
  return 0;
}

/* The original leaves the subject empty when no subject flag is given. An
 * empty CA subject becomes an empty issuer name in every certificate the CA
 * signs, which OpenSSL-based clients (curl, so ickpt's and imgr's) refuse
 * ("couldn't get X509-issuer name"); so an empty CA subject gets the CN of
 * the original's recipes instead. */
#define ICERT_DEFAULT_CA_CN "RootCA"

static int add_ca_subject(X509_NAME *n, const icert_subject *s) {
  int rc = add_subject(n, s);
  if (rc == 0 && X509_NAME_entry_count(n) == 0 &&
      !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                                  (const unsigned char *)ICERT_DEFAULT_CA_CN, -1, -1, 0))
    rc = -EINVAL;
  return rc;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
  X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
  if (!e)
    return -EINVAL;
  int ok = X509_add_ext(x, e, -1);
  X509_EXTENSION_free(e);
  return ok ? 0 : -EINVAL;
}

static int add_sans(X509 *x, const icert_options *o, char *err, size_t errlen) {
  GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
  int rc = gens ? 0 : -ENOMEM;
  for (size_t i = 0; !rc && i < o->ndns; i++) {
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();
    if (!g || !s || !ASN1_STRING_set(s, o->dns[i], -1)) {
      GENERAL_NAME_free(g);
      ASN1_IA5STRING_free(s);
      rc = -ENOMEM;
      break;
    }
    GENERAL_NAME_set0_value(g, GEN_DNS, s);
    sk_GENERAL_NAME_push(gens, g);
  }
  for (size_t i = 0; !rc && i < o->nips; i++) {
    unsigned char a[16];
    int len = inet_pton(AF_INET, o->ips[i], a) == 1 ? 4
              : inet_pton(AF_INET6, o->ips[i], a) == 1 ? 16 : 0;
    if (!len) {
      rc = fail(err, errlen, -EINVAL, "invalid IP address \"%s\"", o->ips[i]);
      break;
    }
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_OCTET_STRING *s = ASN1_OCTET_STRING_new();
    if (!g || !s || !ASN1_OCTET_STRING_set(s, a, len)) {
      GENERAL_NAME_free(g);
      ASN1_OCTET_STRING_free(s);
      rc = -ENOMEM;
      break;
    }
    GENERAL_NAME_set0_value(g, GEN_IPADD, s);
    sk_GENERAL_NAME_push(gens, g);
  }
  if (!rc && !X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0))
    rc = -EINVAL;
  GENERAL_NAMES_free(gens);
  return rc;
}

static char *bio_text(BIO *b, size_t *len) {
  char *p;
  long n = BIO_get_mem_data(b, &p);
  char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (s) {
    memcpy(s, p, (size_t)n);
    s[n] = 0;
    *len = (size_t)n;
  }
  return s;
}

static int write_file(const char *path, const char *a, size_t alen, const char *b,
                      size_t blen, char *err, size_t errlen) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0400);
  if (fd < 0)
    return fail(err, errlen, -errno, "open %s: %s", path, strerror(errno));
  int rc = 0;
  const char *parts[2] = {a, b};
  size_t lens[2] = {alen, blen};
  for (int i = 0; i < 2 && !rc; i++) {
    size_t off = 0;
    while (off < lens[i]) {
      ssize_t w = write(fd, parts[i] + off, lens[i] - off);
      if (w < 0) {
        rc = fail(err, errlen, -errno, "write %s: %s", path, strerror(errno));
        break;
      }
      off += (size_t)w;
    }
  }
  if (close(fd) != 0 && !rc)
    rc = fail(err, errlen, -errno, "close %s: %s", path, strerror(errno));
  return rc;
}

static int save(const icert_pem *p, const char *cert_path, const char *key_path, char *err,
                size_t errlen) {
  if (cert_path && key_path && !strcmp(cert_path, key_path))
    return write_file(cert_path, p->cert, p->cert_len, p->key, p->key_len, err, errlen);
  int rc = 0;
  if (cert_path)
    rc = write_file(cert_path, p->cert, p->cert_len, NULL, 0, err, errlen);
  if (!rc && key_path)
    rc = write_file(key_path, p->key, p->key_len, NULL, 0, err, errlen);
  return rc;
}

/* Build, sign and encode one certificate. issuer/ikey NULL => self-signed CA. */
static int make(const icert_options *o, bool ca, X509 *issuer, EVP_PKEY *ikey,
                const char *cert_path, const char *key_path, icert_pem *out, char *err,
                size_t errlen) {
  if (o->ttl_s == 0)
    return fail(err, errlen, -EINVAL, "ttl must be non-zero");
  if (!ca && o->ndns == 0 && o->nips == 0)
    return fail(err, errlen, -EINVAL, "at least one DNS name or IP address is required");
  int rc = -EIO;
  icert_pem pem = {0};
  X509 *x = X509_new();
  BIGNUM *bn = BN_new();
  BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
  EVP_PKEY *key = gen_key(o->alg);
  if (!x || !bn || !cb || !kb) {
    rc = fail(err, errlen, -ENOMEM, "out of memory");
    goto out;
  }
  if (!key) {
    rc = ossl_fail(err, errlen, "key generation");
    goto out;
  }
  time_t nb = o->not_before ? (time_t)o->not_before : time(NULL);
  if (!X509_set_version(x, 2) || !BN_rand(bn, 256, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
      !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
      !ASN1_TIME_set(X509_getm_notBefore(x), nb) ||
      !ASN1_TIME_set(X509_getm_notAfter(x), nb + (time_t)o->ttl_s) ||
      !X509_set_pubkey(x, key)) {
    rc = ossl_fail(err, errlen, "certificate setup");
    goto out;
  }
  if ((ca ? add_ca_subject : add_subject)(X509_get_subject_name(x), &o->subject) != 0) {
    rc = ossl_fail(err, errlen, "subject");
    goto out;
  }
  if (!X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer)
                                      : X509_get_subject_name(x))) {
    rc = ossl_fail(err, errlen, "issuer");
    goto out;
  }
  X509 *signer = issuer ? issuer : x;
  if (add_ext(x, signer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE") ||
      add_ext(x, signer, NID_key_usage,
              ca ? "critical,digitalSignature,keyCertSign" : "critical,digitalSignature") ||
      add_ext(x, signer, NID_ext_key_usage, "clientAuth,serverAuth") ||
      add_ext(x, signer, NID_subject_key_identifier, "hash") ||
      (issuer && add_ext(x, signer, NID_authority_key_identifier, "keyid:always"))) {
    rc = ossl_fail(err, errlen, "extensions");
    goto out;
  }
  if (!ca && (rc = add_sans(x, o, err, errlen)) != 0) {
    if (rc != -EINVAL || (err && !*err))
      ossl_fail(err, errlen, "subjectAltName");
    goto out;
  }
  EVP_PKEY *skey = ikey ? ikey : key;
  /* Ed25519 signs the message itself: no separate digest. */
  const EVP_MD *md = EVP_PKEY_get_id(skey) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
  if (!X509_sign(x, skey, md)) {
    rc = ossl_fail(err, errlen, "signing");
    goto out;
  }
  if (!PEM_write_bio_X509(cb, x) ||
      !PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) ||
      !(pem.cert = bio_text(cb, &pem.cert_len)) || !(pem.key = bio_text(kb, &pem.key_len))) {
    rc = ossl_fail(err, errlen, "PEM encoding");
    goto out;
  }
  rc = save(&pem, cert_path, key_path, err, errlen);
  if (!rc && out) {
    *out = pem;
    pem = (icert_pem){0};
  }
out:
  icert_pem_free(&pem);
  EVP_PKEY_free(key);
  BIO_free(cb);
  BIO_free(kb);
  BN_free(bn);
  X509_free(x);
  return rc;
}

int icert_gen_ca(const icert_options *o, const char *cert_path, const char *key_path,
                 icert_pem *out, char *err, size_t errlen) {
  if (err && errlen)
    *err = 0;
  return make(o, true, NULL, NULL, cert_path, key_path, out, err, errlen);
}

int icert_gen_endpoint(const icert_options *o, const icert_pem *ca, const char *cert_path,
                       const char *key_path, icert_pem *out, char *err, size_t errlen) {
  if (err && errlen)
    *err = 0;
  BIO *cb = BIO_new_mem_buf(ca->cert, (int)ca->cert_len);
  BIO *kb = BIO_new_mem_buf(ca->key, (int)ca->key_len);
  X509 *cx = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
  EVP_PKEY *ck = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
  int rc;
  if (!cx)
    rc = ossl_fail(err, errlen, "CA certificate");
  else if (!ck)
    rc = ossl_fail(err, errlen, "CA private key");
  else
    rc = make(o, false, cx, ck, cert_path, key_path, out, err, errlen);
  X509_free(cx);
  EVP_PKEY_free(ck);
  BIO_free(cb);
  BIO_free(kb);
  return rc;
}

static char *read_all(const char *path, size_t *len, char *err, size_t errlen, int *rc) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    *rc = fail(err, errlen, -errno, "open %s: %s", path, strerror(errno));
    return NULL;
  }
  size_t cap = 4096, n = 0;
  char *b = malloc(cap + 1);
  for (;;) {
    if (!b) {
      *rc = fail(err, errlen, -ENOMEM, "out of memory");
      break;
    }
    n += fread(b + n, 1, cap - n, f);
    if (n < cap)
      break;
    if (cap >= (1u << 24)) { /* PEM files are small; refuse anything huge */
      free(b);
      b = NULL;
      *rc = fail(err, errlen, -EFBIG, "%s: too large", path);
      break;
    }
    cap *= 2;
    char *nb = realloc(b, cap + 1);
    if (!nb)
      free(b);
    b = nb;
  }
  if (b && ferror(f)) {
    *rc = fail(err, errlen, -EIO, "read %s: %s", path, strerror(errno));
    free(b);
    b = NULL;
  }
  fclose(f);
  if (b) {
    b[n] = 0;
    *len = n;
  }
  return b;
}

int icert_read_pem(const char *cert_path, const char *key_path, icert_pem *out, char *err,
                   size_t errlen) {
  int rc = 0;
  memset(out, 0, sizeof *out);
  out->cert = read_all(cert_path, &out->cert_len, err, errlen, &rc);
  if (out->cert)
    out->key = read_all(key_path, &out->key_len, err, errlen, &rc);
  if (rc)
    icert_pem_free(out);
  return rc;
}

void icert_pem_free(icert_pem *p) {
  free(p->cert);
  free(p->key);
  memset(p, 0, sizeof *p);
}
