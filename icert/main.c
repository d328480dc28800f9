/*
 * icert: the original's command line (support.md 5.1) over the icert
 * library. Flags follow Go's flag package: -name value, -name=value, one
 * or two dashes; parsing stops at the first non-flag argument or "--".
 * Usage errors go to stderr with exit 2 (as Go's flag package); the
 * original's validation and generation messages go to stdout with exit 1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "icert.h"

#define MAX_LIST 64

typedef struct {
  const char *v[MAX_LIST];
  size_t n;
} strs;

typedef struct {
  bool verbose, ca, ed25519, rsa;
  const char *common_name, *ca_cert, *ca_key, *cert, *key;
  unsigned long long ttl_days;
  strs organization, country, province, locality, street_address, postal_code, dns, ip;
} flags;

typedef enum { F_BOOL, F_STRING, F_UINT, F_LIST } kind;

typedef struct {
  const char *name;
  kind k;
  size_t off;
  const char *usage;
} flag_def;

#define F(n, k, field, u) {n, k, offsetof(flags, field), u}
static const flag_def defs[] = {
    F("ca", F_BOOL, ca, "generated CA Certicate usable for signing Endpoint Certificates"),
    F("caCert", F_STRING, ca_cert, "path to CA Certificate"),
    F("caKey", F_STRING, ca_key, "path to CA Certificate's PrivateKey"),
    F("cert", F_STRING, cert, "path to Endpoint Certificate"),
    F("commonName", F_STRING, common_name, "generated Certificate's Subject.CommonName"),
    F("country", F_LIST, country, "generated Certificate's Subject.Country"),
    F("dns", F_LIST, dns, "generated Certificate's DNS Name"),
    F("ed25519", F_BOOL, ed25519, "generate key via Ed25519"),
    F("ip", F_LIST, ip, "generated Certificate's IP Address"),
    F("key", F_STRING, key, "path to Endpoint Certificate's PrivateKey"),
    F("locality", F_LIST, locality, "generated Certificate's Subject.Locality"),
    F("organization", F_LIST, organization, "generated Certificate's Subject.Organization"),
    F("postalCode", F_LIST, postal_code, "generated Certificate's Subject.PostalCode"),
    F("province", F_LIST, province, "generated Certificate's Subject.Province"),
    F("rsa", F_BOOL, rsa, "generate key via RSA"),
    F("streetAddress", F_LIST, street_address, "generated Certificate's Subject.StreetAddress"),
    F("ttl", F_UINT, ttl_days, "generated Certificate's time to live in days"),
    F("v", F_BOOL, verbose, "verbose mode"),
};
#undef F

static void usage(FILE *f) {
  static const char *type[] = {"", " string", " uint", " value"};
  fprintf(f, "Usage of icert:\n");
  for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
    /* Go puts the usage of a one-letter boolean flag on its line */
    bool same_line = defs[i].k == F_BOOL && strlen(defs[i].name) == 1;
    fprintf(f, "  -%s%s%s%s\n", defs[i].name, type[defs[i].k], same_line ? "\t" : "\n    \t",
            defs[i].usage);
  }
}

static int usage_error(const char *fmt, const char *a, const char *b) {
  fprintf(stderr, fmt, a, b);
  fputc('\n', stderr);
  usage(stderr);
  return 2;
}

/* Returns -1 to go on, else the exit status. */
static int parse(int argc, char **argv, flags *fl) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || a[1] == 0)
      break;
    a++;
    if (*a == '-') {
      a++;
      if (*a == 0)
        break; /* "--" ends the flags */
    }
    if (*a == '-' || *a == '=')
      return usage_error("bad flag syntax: %s%s", argv[i], "");
    if (!strcmp(a, "h") || !strcmp(a, "help")) {
      usage(stderr);
      return 0;
    }
    const char *eq = strchr(a, '=');
    size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
    const flag_def *d = NULL;
    for (size_t j = 0; j < sizeof defs / sizeof defs[0]; j++)
      if (strlen(defs[j].name) == nlen && !strncmp(defs[j].name, a, nlen))
        d = &defs[j];
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)nlen, a);
    if (!d)
      return usage_error("flag provided but not defined: -%s%s", name, "");
    void *field = (char *)fl + d->off;
    const char *val = eq ? eq + 1 : NULL;
    if (d->k == F_BOOL) {
      if (!val || !strcmp(val, "true") || !strcmp(val, "1"))
        *(bool *)field = true;
      else if (!strcmp(val, "false") || !strcmp(val, "0"))
        *(bool *)field = false;
      else
        return usage_error("invalid boolean value \"%s\" for -%s: parse error", val, name);
      continue;
    }
    if (!val) {
      if (i + 1 >= argc)
        return usage_error("flag needs an argument: -%s%s", name, "");
      val = argv[++i];
    }
    if (d->k == F_STRING) {
      *(const char **)field = val;
    } else if (d->k == F_UINT) {
      char *end;
      errno = 0;
      unsigned long long v = strtoull(val, &end, 0);
      if (!*val || *end || errno || val[0] == '-')
        return usage_error("invalid value \"%s\" for flag -%s: parse error", val, name);
      *(unsigned long long *)field = v;
    } else {
      strs *l = field;
      if (l->n == MAX_LIST)
        return usage_error("too many -%s values%s", name, "");
      l->v[l->n++] = val;
    }
  }
  return -1;
}

/* Go prints a []string as [a b c]. */
static void print_list(const char *label, const strs *l) {
  printf("%s[", label);
  for (size_t i = 0; i < l->n; i++)
    printf("%s%s", i ? " " : "", l->v[i]);
  printf("]\n");
}

static void print_verbose(const flags *f) {
  printf("                         caFlag: %s\n\n", f->ca ? "true" : "false");
  printf("generateKeyAlgorithmEd25519Flag: %s\n", f->ed25519 ? "true" : "false");
  printf("    generateKeyAlgorithmRSAFlag: %s\n\n", f->rsa ? "true" : "false");
  printf("                 commonNameFlag: \"%s\"\n\n", f->common_name);
  print_list("               organizationFlag: ", &f->organization);
  print_list("                    countryFlag: ", &f->country);
  print_list("                   provinceFlag: ", &f->province);
  print_list("                   localityFlag: ", &f->locality);
  print_list("              streetAddressFlag: ", &f->street_address);
  print_list("                 postalCodeFlag: ", &f->postal_code);
  printf("\n                    ttlDaysFlag: %llu\n\n", f->ttl_days);
  print_list("                   dnsNamesFlag: ", &f->dns);
  print_list("                ipAddressesFlag: ", &f->ip);
  printf("\n          caCertPemFilePathFlag: \"%s\"\n", f->ca_cert);
  printf("           caKeyPemFilePathFlag: \"%s\"\n\n", f->ca_key);
  printf("    endpointCertPemFilePathFlag: \"%s\"\n", f->cert);
  printf("     endpointKeyPemFilePathFlag: \"%s\"\n", f->key);
}

static int fail(const char *msg) {
  printf("%s\n", msg);
  return 1;
}

static icert_list list(const strs *s) { return (icert_list){s->v, s->n}; }

int main(int argc, char **argv) {
  flags f = {.common_name = "", .ca_cert = "", .ca_key = "", .cert = "", .key = ""};
  int st = parse(argc, argv, &f);
  if (st >= 0)
    return st;
  if (f.verbose)
    print_verbose(&f);
  if (f.ed25519 == f.rsa)
    return fail("Precisely one of -ed25519 or -rsa must be specified");
  if (f.ttl_days == 0)
    return fail("A non-zero -ttl must be specified");
  if (f.ttl_days > 1000000) /* beyond any date X.509 can express sensibly */
    return fail("The -ttl is too large");
  if (!*f.ca_cert || !*f.ca_key)
    return fail("Both -caCert and -caKey must be specified");
  if (f.ca) {
    if (*f.cert || *f.key)
      return fail("If -ca is specified, neither -cert nor -key may be specified");
    if (f.dns.n || f.ip.n)
      return fail("If -ca is specified, neither -dns nor -ip may be specified");
  } else {
    if (!*f.cert || !*f.key)
      return fail("If -ca is not specified, both -cert and -key must be specified");
    if (!f.dns.n && !f.ip.n)
      return fail("If -ca is not specified, at least one -dns or -ip must be specified");
  }
  icert_options o = {
      .alg = f.ed25519 ? ICERT_ED25519 : ICERT_RSA,
      .ttl_s = f.ttl_days * 86400ull,
      .dns = f.dns.v,
      .ndns = f.dns.n,
      .ips = f.ip.v,
      .nips = f.ip.n,
  };
  o.subject = (icert_subject){
      .common_name = f.common_name,
      .organization = list(&f.organization),
      .country = list(&f.country),
      .province = list(&f.province),
      .locality = list(&f.locality),
      .street_address = list(&f.street_address),
      .postal_code = list(&f.postal_code),
  };
  char err[512] = "";
  if (f.ca) {
    if (icert_gen_ca(&o, f.ca_cert, f.ca_key, NULL, err, sizeof err) != 0) {
      printf("icertpkg.GenCACert() failed: %s\n", err);
      return 1;
    }
    if (f.verbose)
      printf("icertpkg.GenCACert() generated caCert: \"%s\" and caKey: \"%s\"\n", f.ca_cert,
             f.ca_key);
    return 0;
  }
  icert_pem ca;
  int rc = icert_read_pem(f.ca_cert, f.ca_key, &ca, err, sizeof err);
  if (!rc)
    rc = icert_gen_endpoint(&o, &ca, f.cert, f.key, NULL, err, sizeof err);
  icert_pem_free(&ca);
  if (rc) {
    printf("icertpkg.GenEndpointCert() failed: %s\n", err);
    return 1;
  }
  if (f.verbose)
    printf("icertpkg.GenEndpointCert() generated cert: \"%s\" and key: \"%s\"\n", f.cert,
           f.key);
  return 0;
}
