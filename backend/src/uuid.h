/*
 * uuid.h: UUIDs in their canonical text form (8-4-4-4-12 lowercase hex digits, 36 characters):
 * the ids the server makes (a record's invocation_id when the client sent none, alert events,
 * Firehose records' ids from a hash) and the check of ids a client sends in a path.
 */
#ifndef CSA_UUID_H
#define CSA_UUID_H

#define CSA_UUID_SIZE 37 /* 36 characters and the NUL */

/* Formats 16 bytes as a UUID of the given version (4 random, 5 name-based) into out, after setting
 * the version and RFC 4122 variant bits in bytes (which it modifies). */
void csa_uuid_format(unsigned char bytes[16], unsigned version, char out[CSA_UUID_SIZE]);

/* A random (version 4) UUID into out, from libsodium's CSPRNG (sodium_init() must have run). */
void csa_uuid_random(char out[CSA_UUID_SIZE]);

/* 1 if s is a canonical UUID (8-4-4-4-12 hex digits, either case), else 0. */
int csa_is_uuid(const char *s);

#endif
