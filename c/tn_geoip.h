/* Optional GeoIP/ASN database (config geoip_db, a MaxMind DB file) for peer diversity. */
#ifndef TN_GEOIP_H
#define TN_GEOIP_H

#include "tn_addr.h"

#include <stdbool.h>

typedef struct tn_geoip tn_geoip_t;

typedef struct {
    uint32_t asn;    /* autonomous system number, 0 = unknown */
    char country[3]; /* ISO 3166 code, "" = unknown */
} tn_geo_t;

/* Opens the database (memory-mapped: lookups never block). Errors go to err. */
int tn_geoip_open(tn_geoip_t **out, const char *path, char *err, size_t errlen);
void tn_geoip_close(tn_geoip_t *g);
const char *tn_geoip_type(const tn_geoip_t *g);
/* Fills out for a; false when the database knows nothing of it (g may be NULL). */
bool tn_geoip_lookup(tn_geoip_t *g, const tn_addr_t *a, tn_geo_t *out);
/* A comparable key: the ASN when known, else the country, else 0 (no key). */
uint64_t tn_geo_key(const tn_geo_t *geo);

#endif
