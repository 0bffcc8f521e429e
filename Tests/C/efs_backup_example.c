// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.
//
// efs_backup_example.c: the Win32 EFS API used the way a Windows backup program uses it (wimlib, robocopy
// /EFSRAW, ntbackup): encrypt, check the status, export the encrypted file raw to a backup file, restore it
// elsewhere without any key, and manage users, recovery agents and keys. It also checks the error paths a
// backup program meets. Built and run by Tests/C/run.sh:
//
//     cc Tests/C/efs_backup_example.c -I Sources/CEFSWin32/include -L .build/debug -lefsapi -Wl,-rpath,$PWD/.build/debug -o efs_backup_example
//     EFS_HOME=... efs_backup_example VOLUME_DIR USER_CERT.der OTHER_USER_CERT.der
//
// VOLUME_DIR is an empty directory inside an EFS volume whose recovery policy has one agent; USER_CERT.der is
// the current key of the key store in $EFS_HOME (stored without a passphrase); OTHER_USER_CERT.der is another
// user's certificate. $EFS_EXAMPLE_PASSPHRASE_FILE, if set, names a passphrase file used to test
// SetUserFileEncryptionKey(NULL). The last line printed is "N passed, M failed"; the exit status is 1 on any
// failure.

#define _POSIX_C_SOURCE 200809L  // lstat, setenv, unsetenv

#include <efs.h>

#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// MARK: - Checks

static int passed, failed;

static void check(int ok, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("%s ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    if (!ok) printf("   (line %d)", line);
    printf("\n");
    va_end(ap);
    if (ok) passed++; else failed++;
}

#define CHECK(cond, what) check((cond) != 0, __LINE__, "%s", what)
// A DWORD-returning call must return `want`.
#define EXPECT_CODE(call, want, what)                                                                  \
    do {                                                                                              \
        DWORD got_ = (call);                                                                          \
        check(got_ == (DWORD)(want), __LINE__, "%s: returned %lu, want %lu", what, (unsigned long)got_, \
              (unsigned long)(want));                                                                 \
    } while (0)
// A BOOL-returning call must succeed (and reset the last error) ...
#define EXPECT_TRUE(call, what)                                                                              \
    do {                                                                                                     \
        SetLastError(12345);                                                                                 \
        BOOL ok_ = (call);                                                                                   \
        DWORD e_ = GetLastError();                                                                           \
        check(ok_ && e_ == ERROR_SUCCESS, __LINE__, "%s: %s, GetLastError() = %lu", what, ok_ ? "TRUE" : "FALSE", \
              (unsigned long)e_);                                                                            \
    } while (0)
// ... or fail with `want` as the last error.
#define EXPECT_FALSE(call, want, what)                                                                          \
    do {                                                                                                        \
        BOOL ok_ = (call);                                                                                      \
        DWORD e_ = GetLastError();                                                                              \
        check(!ok_ && e_ == (DWORD)(want), __LINE__, "%s: %s, GetLastError() = %lu, want FALSE and %lu", what,  \
              ok_ ? "TRUE" : "FALSE", (unsigned long)e_, (unsigned long)(want));                                \
    } while (0)

static void section(const char *name) { printf("\n== %s\n", name); }

// MARK: - Strings and files

// UTF-8 to NUL-terminated UTF-16, as a Windows program would get from MultiByteToWideChar(CP_UTF8, ...).
static WCHAR *to_utf16(const char *s) {
    size_t n = strlen(s);
    WCHAR *out = malloc((n + 1) * sizeof(WCHAR));  // a UTF-8 byte never yields more than one UTF-16 unit
    size_t j = 0;
    const unsigned char *p = (const unsigned char *)s;
    if (!out) return NULL;
    while (*p) {
        uint32_t c;
        int extra;
        if (*p < 0x80) { c = *p; extra = 0; }
        else if ((*p & 0xE0) == 0xC0) { c = *p & 0x1F; extra = 1; }
        else if ((*p & 0xF0) == 0xE0) { c = *p & 0x0F; extra = 2; }
        else if ((*p & 0xF8) == 0xF0) { c = *p & 0x07; extra = 3; }
        else { free(out); return NULL; }
        p++;
        for (int k = 0; k < extra; k++, p++) {
            if ((*p & 0xC0) != 0x80) { free(out); return NULL; }
            c = (c << 6) | (*p & 0x3F);
        }
        if (c >= 0x10000) {
            c -= 0x10000;
            out[j++] = (WCHAR)(0xD800 + (c >> 10));
            out[j++] = (WCHAR)(0xDC00 + (c & 0x3FF));
        } else {
            out[j++] = (WCHAR)c;
        }
    }
    out[j] = 0;
    return out;
}

// UTF-16 to UTF-8, for printing display names.
static char *to_utf8(const WCHAR *w) {
    size_t n = 0;
    while (w[n]) n++;
    char *out = malloc(n * 3 + 1), *q = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = w[i];
        if (c >= 0xD800 && c < 0xDC00 && i + 1 < n && w[i + 1] >= 0xDC00 && w[i + 1] < 0xE000) {
            c = 0x10000 + ((c - 0xD800) << 10) + (w[++i] - 0xDC00);
        }
        if (c < 0x80) *q++ = (char)c;
        else if (c < 0x800) { *q++ = (char)(0xC0 | c >> 6); *q++ = (char)(0x80 | (c & 0x3F)); }
        else if (c < 0x10000) { *q++ = (char)(0xE0 | c >> 12); *q++ = (char)(0x80 | ((c >> 6) & 0x3F)); *q++ = (char)(0x80 | (c & 0x3F)); }
        else { *q++ = (char)(0xF0 | c >> 18); *q++ = (char)(0x80 | ((c >> 12) & 0x3F)); *q++ = (char)(0x80 | ((c >> 6) & 0x3F)); *q++ = (char)(0x80 | (c & 0x3F)); }
    }
    *q = 0;
    return out;
}

// dir + leaf, in UTF-16.
static WCHAR *wjoin(const WCHAR *dir, const WCHAR *leaf) {
    size_t a = 0, b = 0;
    while (dir[a]) a++;
    while (leaf[b]) b++;
    WCHAR *out = malloc((a + b + 1) * sizeof(WCHAR));
    memcpy(out, dir, a * sizeof(WCHAR));
    memcpy(out + a, leaf, (b + 1) * sizeof(WCHAR));
    return out;
}

static char *join(const char *dir, const char *leaf) {
    size_t n = strlen(dir) + strlen(leaf) + 2;
    char *out = malloc(n);
    snprintf(out, n, "%s/%s", dir, leaf);
    return out;
}

static BYTE *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    BYTE *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    *len = n;
    return buf;
}

static int write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static int exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

static int contains(const BYTE *hay, size_t n, const char *needle) {
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0) return 1;
    return 0;
}

// MARK: - Raw callbacks

// Export sink: the backup file, plus a copy in memory for the checks.
typedef struct {
    FILE *file;
    BYTE *data;
    size_t len, cap;
    unsigned calls;
} Sink;

static DWORD WINAPI export_to_backup(PBYTE pbData, PVOID pvCallbackContext, ULONG ulLength) {
    Sink *s = pvCallbackContext;
    s->calls++;
    if (s->file && fwrite(pbData, 1, ulLength, s->file) != ulLength) return ERROR_IO_DEVICE;
    if (s->len + ulLength > s->cap) {
        size_t cap = s->cap ? s->cap : 65536;
        while (cap < s->len + ulLength) cap *= 2;
        BYTE *grown = realloc(s->data, cap);
        if (!grown) return ERROR_NOT_ENOUGH_MEMORY;
        s->data = grown;
        s->cap = cap;
    }
    memcpy(s->data + s->len, pbData, ulLength);
    s->len += ulLength;
    return ERROR_SUCCESS;
}

#define EXAMPLE_ABORT_CODE 4711

static DWORD WINAPI export_abort(PBYTE pbData, PVOID pvCallbackContext, ULONG ulLength) {
    (void)pbData;
    (void)ulLength;
    (*(unsigned *)pvCallbackContext)++;
    return EXAMPLE_ABORT_CODE;  // "any nonzero code" stops the export
}

// Import source: the backup file (or a memory buffer), handed out in pieces of at most `chunk` bytes.
typedef struct {
    FILE *file;
    const BYTE *data;
    size_t len, pos, chunk;
    ULONG capacity;
    unsigned calls;
    DWORD fail_with;  // nonzero: return this on the second call
} Source;

static DWORD WINAPI import_from_backup(PBYTE pbData, PVOID pvCallbackContext, PULONG ulLength) {
    Source *s = pvCallbackContext;
    s->calls++;
    if (s->capacity == 0) s->capacity = *ulLength;
    if (s->fail_with && s->calls == 2) return s->fail_with;
    size_t want = *ulLength < s->chunk ? *ulLength : s->chunk;
    size_t n;
    if (s->file) {
        n = fread(pbData, 1, want, s->file);
        if (n == 0 && ferror(s->file)) return ERROR_IO_DEVICE;
    } else {
        n = s->len - s->pos < want ? s->len - s->pos : want;
        memcpy(pbData, s->data + s->pos, n);
        s->pos += n;
    }
    *ulLength = (ULONG)n;  // 0 ends the stream
    return ERROR_SUCCESS;
}

// MARK: - Helpers over the API

// Exports `path` (flags 0 or CREATE_FOR_DIR) into memory; returns the ReadEncryptedFileRaw status.
static DWORD export_raw(const char *path, ULONG flags, Sink *sink) {
    PVOID ctx = NULL;
    DWORD rc = OpenEncryptedFileRawA(path, flags, &ctx);
    if (rc != ERROR_SUCCESS) return rc;
    rc = ReadEncryptedFileRaw(export_to_backup, sink, ctx);
    CloseEncryptedFileRaw(ctx);
    return rc;
}

// Imports a memory stream to `path`; returns the WriteEncryptedFileRaw status (or the open's).
static DWORD import_raw_w(const WCHAR *path, ULONG flags, const BYTE *data, size_t len) {
    PVOID ctx = NULL;
    DWORD rc = OpenEncryptedFileRawW(path, flags, &ctx);
    if (rc != ERROR_SUCCESS) return rc;
    Source src = {.data = data, .len = len, .chunk = 5000};
    rc = WriteEncryptedFileRaw(import_from_backup, &src, ctx);
    CloseEncryptedFileRaw(ctx);
    return rc;
}

static DWORD status_of(const char *path) {
    DWORD st = 0xFFFFFFFF;
    if (!FileEncryptionStatusA(path, &st)) return 0xFFFFFFFF;
    return st;
}

static void print_hash_list(const char *what, PENCRYPTION_CERTIFICATE_HASH_LIST list) {
    printf("     %s: %lu\n", what, (unsigned long)list->nCert_Hash);
    for (DWORD i = 0; i < list->nCert_Hash; i++) {
        PENCRYPTION_CERTIFICATE_HASH h = list->pUsers[i];
        char *name = h->lpDisplayInformation ? to_utf8(h->lpDisplayInformation) : NULL;
        printf("       ");
        for (DWORD k = 0; k < h->pHash->cbData; k++) printf("%02X%s", h->pHash->pbData[k], k % 2 ? " " : "");
        printf(" %s\n", name ? name : "(no name)");
        free(name);
    }
}

// The entry of `list` whose hash differs from `other` (the other user's), or NULL.
static PENCRYPTION_CERTIFICATE_HASH entry_not(PENCRYPTION_CERTIFICATE_HASH_LIST list, const BYTE *other) {
    for (DWORD i = 0; i < list->nCert_Hash; i++)
        if (memcmp(list->pUsers[i]->pHash->pbData, other, 20) != 0) return list->pUsers[i];
    return NULL;
}

static int name_is(PENCRYPTION_CERTIFICATE_HASH h, const char *want) {
    char *name = to_utf8(h->lpDisplayInformation);
    int same = name && strcmp(name, want) == 0;
    free(name);
    return same;
}

static void *other_thread(void *arg) {
    (void)arg;
    SetLastError(99);
    return (void *)(uintptr_t)GetLastError();
}

// MARK: - main

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s VOLUME_DIR USER_CERT.der OTHER_USER_CERT.der\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *vol = argv[1];
    size_t user_len = 0, other_len = 0;
    BYTE *user_der = read_file(argv[2], &user_len);
    BYTE *other_der = read_file(argv[3], &other_len);
    if (!user_der || !other_der) {
        fprintf(stderr, "cannot read the certificates: %s\n", strerror(errno));
        return 2;
    }
    const char *passphrase_file = getenv("EFS_EXAMPLE_PASSPHRASE_FILE");
    unsetenv("EFS_PASSPHRASE_FILE");  // the user's key is stored without a passphrase

    WCHAR *wvol = to_utf16(vol);
    char *report = join(vol, "report.txt");
    char *plain = join(vol, "plain.txt");
    WCHAR *wreport = to_utf16(report);
    WCHAR *wplain = to_utf16(plain);
    // A restore target with a non-ASCII name, given as a UTF-16 literal.
    WCHAR *wrestored = wjoin(wvol, u"/restored-\u00e9t\u00e9-\u20ac.txt");
    char *restored = join(vol, "restored-\xc3\xa9t\xc3\xa9-\xe2\x82\xac.txt");
    char *backup = join(vol, "../report.efsraw");  // the backup file lives outside the volume

    // The document: 150 000 bytes, so the raw stream has several data segments.
    size_t doc_len = 0;
    char *doc = malloc(160000);
    while (doc_len < 150000) doc_len += (size_t)sprintf(doc + doc_len, "line %06zu: The quick brown fox jumps over the lazy dog\n", doc_len);
    doc_len = 150000;

    // MARK: Encrypting
    section("EncryptFileA and FileEncryptionStatusA");
    CHECK(write_file(report, doc, doc_len), "create report.txt");
    CHECK(write_file(plain, "not secret\n", 11), "create plain.txt");
    EXPECT_CODE(status_of(report), FILE_ENCRYPTABLE, "FileEncryptionStatusA(report.txt) before");
    EXPECT_TRUE(EncryptFileA(report), "EncryptFileA(report.txt)");
    EXPECT_CODE(status_of(report), FILE_IS_ENCRYPTED, "FileEncryptionStatusA(report.txt) after");
    EXPECT_TRUE(EncryptFileA(report), "EncryptFileA on an encrypted file is a no-op");
    DWORD st = 0;
    EXPECT_TRUE(FileEncryptionStatusW(wreport, &st), "FileEncryptionStatusW(report.txt)");
    EXPECT_CODE(st, FILE_IS_ENCRYPTED, "FileEncryptionStatusW status");
    {
        size_t n = 0;
        BYTE *disk = read_file(report, &n);
        CHECK(disk && !contains(disk, n, "quick brown fox"), "the backing file holds no plaintext");
        free(disk);
    }

    // MARK: Export
    section("Export: OpenEncryptedFileRawA(..., 0, &ctx) + ReadEncryptedFileRaw");
    Sink stream = {0};
    {
        PVOID ctx = (PVOID)1, ctx2 = (PVOID)1;
        EXPECT_CODE(OpenEncryptedFileRawA(plain, 0, &ctx), ERROR_FILE_NOT_ENCRYPTED, "export of a plain file");
        CHECK(ctx == NULL, "a failed open stores NULL in *pvContext");
        EXPECT_CODE(OpenEncryptedFileRawA(report, 0, &ctx), ERROR_SUCCESS, "OpenEncryptedFileRawA(report.txt, 0)");
        CHECK(ctx != NULL, "the export context is not NULL");
        EXPECT_CODE(OpenEncryptedFileRawA(report, 0, &ctx2), ERROR_SHARING_VIOLATION, "a second open of the same file");
        EXPECT_CODE(OpenEncryptedFileRawW(wreport, CREATE_FOR_IMPORT, &ctx2), ERROR_SHARING_VIOLATION,
                    "an import over a file open for export");
        stream.file = fopen(backup, "wb");
        CHECK(stream.file != NULL, "create the backup file");
        EXPECT_CODE(ReadEncryptedFileRaw(export_to_backup, &stream, ctx), ERROR_SUCCESS, "ReadEncryptedFileRaw");
        CHECK(fclose(stream.file) == 0, "close the backup file");
        stream.file = NULL;
        printf("     exported %zu bytes in %u callbacks\n", stream.len, stream.calls);
        CHECK(stream.calls >= 2, "the export came in several blocks (header, then batched segments)");
        static const BYTE robs[12] = {0, 1, 0, 0, 'R', 0, 'O', 0, 'B', 0, 'S', 0};
        CHECK(stream.len > 150000 && memcmp(stream.data, robs, sizeof robs) == 0, "the stream starts with the ROBS header");
        CHECK(!contains(stream.data, stream.len, "quick brown fox"), "the stream holds no plaintext");
        Sink again = {0};
        EXPECT_CODE(ReadEncryptedFileRaw(export_to_backup, &again, ctx), ERROR_INVALID_FUNCTION,
                    "a second ReadEncryptedFileRaw on the context");
        CloseEncryptedFileRaw(ctx);
        EXPECT_CODE(ReadEncryptedFileRaw(export_to_backup, &again, ctx), ERROR_INVALID_PARAMETER,
                    "ReadEncryptedFileRaw on a closed context");
        CloseEncryptedFileRaw(ctx);  // closing twice is harmless here
        free(again.data);
    }
    {
        PVOID ctx = NULL;
        unsigned calls = 0;
        EXPECT_CODE(OpenEncryptedFileRawA(report, 0, &ctx), ERROR_SUCCESS, "reopen after close (the lock is released)");
        EXPECT_CODE(ReadEncryptedFileRaw(export_abort, &calls, ctx), EXAMPLE_ABORT_CODE,
                    "an export callback returning 4711 stops the export with 4711");
        CHECK(calls == 1, "the export stopped at the first block");
        CloseEncryptedFileRaw(ctx);
    }

    // MARK: Import
    section("Import: OpenEncryptedFileRawW(..., CREATE_FOR_IMPORT, &ctx) + WriteEncryptedFileRaw");
    {
        PVOID ctx = NULL;
        Source src = {.chunk = 10000};
        src.file = fopen(backup, "rb");
        CHECK(src.file != NULL, "open the backup file");
        EXPECT_CODE(OpenEncryptedFileRawW(wrestored, CREATE_FOR_IMPORT, &ctx), ERROR_SUCCESS,
                    "OpenEncryptedFileRawW(u\"restored-\\u00e9t\\u00e9-\\u20ac.txt\", CREATE_FOR_IMPORT)");
        Sink none = {0};
        EXPECT_CODE(ReadEncryptedFileRaw(export_to_backup, &none, ctx), ERROR_INVALID_FUNCTION,
                    "ReadEncryptedFileRaw on an import context");
        EXPECT_CODE(WriteEncryptedFileRaw(import_from_backup, &src, ctx), ERROR_SUCCESS, "WriteEncryptedFileRaw");
        printf("     imported in %u callbacks; buffer capacity %lu\n", src.calls, (unsigned long)src.capacity);
        CHECK(src.capacity >= 65536 / 2, "the import buffer is large");
        EXPECT_CODE(WriteEncryptedFileRaw(import_from_backup, &src, ctx), ERROR_INVALID_FUNCTION,
                    "a second WriteEncryptedFileRaw on the context");
        CloseEncryptedFileRaw(ctx);
        fclose(src.file);
    }
    EXPECT_CODE(status_of(restored), FILE_IS_ENCRYPTED, "the restored file is encrypted (FileEncryptionStatusA)");
    st = 0;
    EXPECT_TRUE(FileEncryptionStatusW(wrestored, &st), "FileEncryptionStatusW(restored)");
    EXPECT_CODE(st, FILE_IS_ENCRYPTED, "FileEncryptionStatusW(restored) status");
    {
        Sink again = {0};
        EXPECT_CODE(export_raw(restored, 0, &again), ERROR_SUCCESS, "export of the restored file");
        CHECK(again.len == stream.len && memcmp(again.data, stream.data, stream.len) == 0,
              "the restored file exports byte for byte as the original");
        free(again.data);
    }
    {
        char *garbage = join(vol, "garbage.bin");
        WCHAR *wgarbage = to_utf16(garbage);
        static const char junk[] = "this is not an EFS raw stream, just some bytes a broken backup holds";
        EXPECT_CODE(import_raw_w(wgarbage, CREATE_FOR_IMPORT, (const BYTE *)junk, sizeof junk), ERROR_NOT_EXPORT_FORMAT,
                    "WriteEncryptedFileRaw fed garbage");
        CHECK(!exists(garbage), "a rejected import leaves no file");
        EXPECT_CODE(import_raw_w(wgarbage, CREATE_FOR_IMPORT, stream.data, stream.len / 2), ERROR_NOT_EXPORT_FORMAT,
                    "WriteEncryptedFileRaw fed half a stream");
        CHECK(!exists(garbage), "a truncated import leaves no file");
        PVOID ctx = NULL;
        Source src = {.data = stream.data, .len = stream.len, .chunk = 4096, .fail_with = ERROR_CANCELLED};
        EXPECT_CODE(OpenEncryptedFileRawW(wgarbage, CREATE_FOR_IMPORT, &ctx), ERROR_SUCCESS, "open for an aborted import");
        EXPECT_CODE(WriteEncryptedFileRaw(import_from_backup, &src, ctx), ERROR_CANCELLED,
                    "an import callback returning ERROR_CANCELLED stops the import with it");
        CloseEncryptedFileRaw(ctx);
        CHECK(!exists(garbage), "an aborted import leaves no file");
        free(garbage);
        free(wgarbage);
    }
    {
        char *hidden = join(vol, ".hidden.txt");
        WCHAR *whidden = to_utf16(hidden);
        PVOID ctx = NULL;
        CHECK(write_file(hidden, "old\n", 4), "create .hidden.txt");
        EXPECT_CODE(OpenEncryptedFileRawW(whidden, CREATE_FOR_IMPORT, &ctx), ERROR_ACCESS_DENIED,
                    "import over a hidden file without OVERWRITE_HIDDEN");
        EXPECT_CODE(import_raw_w(whidden, CREATE_FOR_IMPORT | OVERWRITE_HIDDEN | EFSRPC_SECURE_ONLY, stream.data, stream.len),
                    ERROR_SUCCESS, "import over a hidden file with OVERWRITE_HIDDEN (and the ignored EFSRPC_SECURE_ONLY)");
        EXPECT_CODE(status_of(hidden), FILE_IS_ENCRYPTED, "the hidden file was replaced by the encrypted one");
        free(hidden);
        free(whidden);
    }

    // MARK: Directories
    section("Directories: CREATE_FOR_DIR");
    {
        char *docs = join(vol, "docs");
        char *docs2 = join(vol, "docs-restored");
        WCHAR *wdocs2 = to_utf16(docs2);
        PVOID ctx = NULL;
        CHECK(mkdir(docs, 0755) == 0, "mkdir docs");
        EXPECT_TRUE(EncryptFileA(docs), "EncryptFileA(docs/)");
        EXPECT_CODE(status_of(docs), FILE_IS_ENCRYPTED, "docs/ is encrypted");
        Sink dir = {0};
        EXPECT_CODE(export_raw(docs, CREATE_FOR_DIR, &dir), ERROR_SUCCESS, "export docs/ with CREATE_FOR_DIR");
        EXPECT_CODE(import_raw_w(wdocs2, CREATE_FOR_IMPORT | CREATE_FOR_DIR, dir.data, dir.len), ERROR_SUCCESS,
                    "import it with CREATE_FOR_IMPORT | CREATE_FOR_DIR");
        struct stat sb;
        CHECK(stat(docs2, &sb) == 0 && S_ISDIR(sb.st_mode), "the import made a directory");
        EXPECT_CODE(status_of(docs2), FILE_IS_ENCRYPTED, "the restored directory is encrypted");
        EXPECT_CODE(OpenEncryptedFileRawA(report, CREATE_FOR_DIR, &ctx), ERROR_INVALID_PARAMETER,
                    "export of a file with CREATE_FOR_DIR");
        free(dir.data);
        free(docs);
        free(docs2);
        free(wdocs2);
    }

    // MARK: Users and recovery agents
    section("QueryUsersOnEncryptedFile / QueryRecoveryAgentsOnEncryptedFile");
    BYTE user_hash[20] = {0};
    {
        PENCRYPTION_CERTIFICATE_HASH_LIST users = (PENCRYPTION_CERTIFICATE_HASH_LIST)1, agents = NULL;
        EXPECT_CODE(QueryUsersOnEncryptedFile(wreport, &users), ERROR_SUCCESS, "QueryUsersOnEncryptedFile(report.txt)");
        if (users) {
            print_hash_list("users", users);
            CHECK(users->nCert_Hash == 1, "one user");
            if (users->nCert_Hash >= 1) {
                PENCRYPTION_CERTIFICATE_HASH h = users->pUsers[0];
                CHECK(h->cbTotalLength == sizeof(ENCRYPTION_CERTIFICATE_HASH) && h->pUserSid == NULL, "cbTotalLength, pUserSid");
                CHECK(h->pHash && h->pHash->cbData == 20, "the hash is a 20-byte SHA-1 thumbprint");
                CHECK(h->lpDisplayInformation && h->lpDisplayInformation[0] != 0, "the user has a display name");
                if (h->pHash && h->pHash->cbData == 20) memcpy(user_hash, h->pHash->pbData, 20);
            }
            FreeEncryptionCertificateHashList(users);
        }
        EXPECT_CODE(QueryRecoveryAgentsOnEncryptedFile(wreport, &agents), ERROR_SUCCESS, "QueryRecoveryAgentsOnEncryptedFile");
        if (agents) {
            print_hash_list("recovery agents", agents);
            CHECK(agents->nCert_Hash == 1, "one recovery agent (the volume's policy)");
            FreeEncryptionCertificateHashList(agents);
        }
        users = (PENCRYPTION_CERTIFICATE_HASH_LIST)1;
        EXPECT_CODE(QueryUsersOnEncryptedFile(wplain, &users), ERROR_FILE_NOT_ENCRYPTED, "QueryUsers on a plain file");
        CHECK(users == NULL, "a failed query stores NULL");
        EXPECT_CODE(QueryUsersOnEncryptedFile(wreport, NULL), ERROR_INVALID_PARAMETER, "QueryUsers with a NULL out-pointer");
        FreeEncryptionCertificateHashList(NULL);
        CHECK(1, "FreeEncryptionCertificateHashList(NULL) is a no-op");
    }

    section("AddUsersToEncryptedFile / RemoveUsersFromEncryptedFile");
    EFS_CERTIFICATE_BLOB other_blob = {X509_ASN_ENCODING, (DWORD)other_len, other_der};
    ENCRYPTION_CERTIFICATE other_cert = {sizeof(ENCRYPTION_CERTIFICATE), NULL, &other_blob};
    PENCRYPTION_CERTIFICATE other_certs[1] = {&other_cert};
    ENCRYPTION_CERTIFICATE_LIST add = {1, other_certs};
    EFS_CERTIFICATE_BLOB user_blob = {X509_ASN_ENCODING, (DWORD)user_len, user_der};
    ENCRYPTION_CERTIFICATE user_cert = {sizeof(ENCRYPTION_CERTIFICATE), NULL, &user_blob};
    {
        EXPECT_CODE(AddUsersToEncryptedFile(wreport, &add), ERROR_SUCCESS, "AddUsersToEncryptedFile(other user's DER certificate)");
        EXPECT_CODE(AddUsersToEncryptedFile(wreport, &add), ERROR_SUCCESS, "adding the same certificate again");
        PENCRYPTION_CERTIFICATE_HASH_LIST users = NULL;
        BYTE other_hash[20] = {0};
        EXPECT_CODE(QueryUsersOnEncryptedFile(wreport, &users), ERROR_SUCCESS, "QueryUsers after the add");
        if (users) {
            print_hash_list("users", users);
            CHECK(users->nCert_Hash == 2, "two users");
            PENCRYPTION_CERTIFICATE_HASH other = entry_not(users, user_hash);
            CHECK(other != NULL && name_is(other, "bob"), "the new user is bob");
            if (other) memcpy(other_hash, other->pHash->pbData, 20);
            FreeEncryptionCertificateHashList(users);
        }

        EFS_CERTIFICATE_BLOB bad = other_blob;
        ENCRYPTION_CERTIFICATE bad_cert = {sizeof(ENCRYPTION_CERTIFICATE), NULL, &bad};
        PENCRYPTION_CERTIFICATE bad_certs[1] = {&bad_cert};
        ENCRYPTION_CERTIFICATE_LIST bad_list = {1, bad_certs};
        bad.dwCertEncodingType = X509_NDR_ENCODING;
        EXPECT_CODE(AddUsersToEncryptedFile(wreport, &bad_list), ERROR_INVALID_PARAMETER, "a certificate not in X509_ASN_ENCODING");
        bad.dwCertEncodingType = X509_ASN_ENCODING;
        bad.cbData = 32769;
        EXPECT_CODE(AddUsersToEncryptedFile(wreport, &bad_list), ERROR_INVALID_PARAMETER, "a certificate over 32 KiB");
        bad.cbData = 40;
        EXPECT_CODE(AddUsersToEncryptedFile(wreport, &bad_list), ERROR_INVALID_PARAMETER, "bytes that are not a certificate");
        ENCRYPTION_CERTIFICATE_LIST too_many = {501, other_certs};
        EXPECT_CODE(AddUsersToEncryptedFile(wreport, &too_many), ERROR_INVALID_PARAMETER, "501 certificates");
        EXPECT_CODE(AddUsersToEncryptedFile(wreport, NULL), ERROR_INVALID_PARAMETER, "a NULL certificate list");
        EXPECT_CODE(AddUsersToEncryptedFile(wplain, &add), ERROR_FILE_NOT_ENCRYPTED, "AddUsers on a plain file");

        // Remove: an unknown hash, a hash of another length (ignored), and the other user's.
        BYTE unknown[20], odd[7] = {1, 2, 3, 4, 5, 6, 7};
        memset(unknown, 0xAB, sizeof unknown);
        EFS_HASH_BLOB hb[3] = {{20, unknown}, {7, odd}, {20, other_hash}};
        ENCRYPTION_CERTIFICATE_HASH eh[3] = {{sizeof(ENCRYPTION_CERTIFICATE_HASH), NULL, &hb[0], NULL},
                                             {sizeof(ENCRYPTION_CERTIFICATE_HASH), NULL, &hb[1], NULL},
                                             {sizeof(ENCRYPTION_CERTIFICATE_HASH), NULL, &hb[2], NULL}};
        PENCRYPTION_CERTIFICATE_HASH ehp[3] = {&eh[0], &eh[1], &eh[2]};
        ENCRYPTION_CERTIFICATE_HASH_LIST remove = {3, ehp};
        EXPECT_CODE(RemoveUsersFromEncryptedFile(wreport, &remove), ERROR_SUCCESS,
                    "RemoveUsersFromEncryptedFile(unknown hash, 7-byte hash, bob's hash)");
        users = NULL;
        EXPECT_CODE(QueryUsersOnEncryptedFile(wreport, &users), ERROR_SUCCESS, "QueryUsers after the remove");
        if (users) {
            print_hash_list("users", users);
            CHECK(users->nCert_Hash == 1 && memcmp(users->pUsers[0]->pHash->pbData, user_hash, 20) == 0,
                  "only the first user is left");
            FreeEncryptionCertificateHashList(users);
        }
        EFS_HASH_BLOB last_blob = {20, user_hash};
        ENCRYPTION_CERTIFICATE_HASH last = {sizeof(ENCRYPTION_CERTIFICATE_HASH), NULL, &last_blob, NULL};
        PENCRYPTION_CERTIFICATE_HASH lastp[1] = {&last};
        ENCRYPTION_CERTIFICATE_HASH_LIST remove_last = {1, lastp};
        EXPECT_CODE(RemoveUsersFromEncryptedFile(wreport, &remove_last), ERROR_ACCESS_DENIED, "removing the last user");
        last_blob.cbData = 101;
        EXPECT_CODE(RemoveUsersFromEncryptedFile(wreport, &remove_last), ERROR_INVALID_PARAMETER, "a hash over 100 bytes");
        EXPECT_CODE(RemoveUsersFromEncryptedFile(wreport, NULL), ERROR_INVALID_PARAMETER, "a NULL hash list");
    }

    // MARK: DuplicateEncryptionInfoFile
    section("DuplicateEncryptionInfoFile");
    {
        char *dup = join(vol, "dup.txt");
        WCHAR *wdup = to_utf16(dup);
        WCHAR *wmissing = wjoin(wvol, u"/missing.txt");
        EXPECT_CODE(DuplicateEncryptionInfoFile(wreport, wdup, CREATE_NEW, 0, NULL), ERROR_SUCCESS,
                    "DuplicateEncryptionInfoFile(report.txt, dup.txt, CREATE_NEW)");
        EXPECT_CODE(status_of(dup), FILE_IS_ENCRYPTED, "dup.txt is encrypted");
        PENCRYPTION_CERTIFICATE_HASH_LIST users = NULL;
        EXPECT_CODE(QueryUsersOnEncryptedFile(wdup, &users), ERROR_SUCCESS, "QueryUsers(dup.txt)");
        if (users) {
            CHECK(users->nCert_Hash == 1 && memcmp(users->pUsers[0]->pHash->pbData, user_hash, 20) == 0,
                  "dup.txt has report.txt's user");
            FreeEncryptionCertificateHashList(users);
        }
        EXPECT_CODE(DuplicateEncryptionInfoFile(wreport, wdup, CREATE_NEW, 0, NULL), ERROR_FILE_EXISTS,
                    "CREATE_NEW onto an existing file");
        EXPECT_CODE(DuplicateEncryptionInfoFile(wreport, wdup, CREATE_ALWAYS, 0, NULL), ERROR_SUCCESS,
                    "CREATE_ALWAYS onto an existing file");
        EXPECT_CODE(DuplicateEncryptionInfoFile(wplain, wmissing, CREATE_NEW, 0, NULL), ERROR_FILE_NOT_ENCRYPTED,
                    "a plain source");
        EXPECT_CODE(DuplicateEncryptionInfoFile(wmissing, wdup, CREATE_ALWAYS, 0, NULL), ERROR_FILE_NOT_FOUND,
                    "a missing source");
        free(dup);
        free(wdup);
        free(wmissing);
    }

    // MARK: EncryptionDisable
    section("EncryptionDisable");
    {
        char *locked = join(vol, "locked");
        char *inside = join(locked, "x.txt");
        WCHAR *wlocked = to_utf16(locked);
        CHECK(mkdir(locked, 0755) == 0 && write_file(inside, "x\n", 2), "mkdir locked/, create locked/x.txt");
        EXPECT_TRUE(EncryptionDisable(wlocked, TRUE), "EncryptionDisable(locked/, TRUE)");
        EXPECT_TRUE(EncryptionDisable(wlocked, TRUE), "disabling again is a no-op");
        EXPECT_CODE(status_of(inside), FILE_DIR_DISALLOWED, "FileEncryptionStatusA(locked/x.txt)");
        EXPECT_FALSE(EncryptFileA(inside), ERROR_DIR_EFS_DISALLOWED, "EncryptFileA(locked/x.txt)");
        EXPECT_TRUE(EncryptionDisable(wlocked, FALSE), "EncryptionDisable(locked/, FALSE)");
        EXPECT_TRUE(EncryptFileA(inside), "EncryptFileA(locked/x.txt) after re-enabling");
        EXPECT_FALSE(EncryptionDisable(wreport, TRUE), ERROR_INVALID_PARAMETER, "EncryptionDisable on a file");
        free(locked);
        free(inside);
        free(wlocked);
    }

    // MARK: SetUserFileEncryptionKey
    section("SetUserFileEncryptionKey");
    {
        EXPECT_CODE(SetUserFileEncryptionKey(&user_cert), ERROR_SUCCESS, "SetUserFileEncryptionKey(the current certificate)");
        EXPECT_CODE(SetUserFileEncryptionKey(&other_cert), ERROR_FILE_NOT_FOUND,
                    "SetUserFileEncryptionKey(a certificate not in the key store)");
        EXPECT_CODE(SetUserFileEncryptionKey(NULL), ERROR_INVALID_PARAMETER,
                    "SetUserFileEncryptionKey(NULL) without $EFS_PASSPHRASE_FILE");
        if (passphrase_file) {
            char *fresh = join(vol, "fresh.txt");
            setenv("EFS_PASSPHRASE_FILE", passphrase_file, 1);
            EXPECT_CODE(SetUserFileEncryptionKey(NULL), ERROR_SUCCESS, "SetUserFileEncryptionKey(NULL) makes a new protected key");
            CHECK(write_file(fresh, doc, 1000), "create fresh.txt");
            EXPECT_TRUE(EncryptFileA(fresh), "EncryptFileA(fresh.txt) with the new key");
            WCHAR *wfresh = to_utf16(fresh);
            PENCRYPTION_CERTIFICATE_HASH_LIST users = NULL;
            EXPECT_CODE(QueryUsersOnEncryptedFile(wfresh, &users), ERROR_SUCCESS, "QueryUsers(fresh.txt)");
            if (users) {
                print_hash_list("users", users);
                struct passwd *pw = getpwuid(geteuid());
                CHECK(users->nCert_Hash == 1 && memcmp(users->pUsers[0]->pHash->pbData, user_hash, 20) != 0 && pw &&
                          name_is(users->pUsers[0], pw->pw_name),
                      "fresh.txt's user is the new key, named after the login user");
                FreeEncryptionCertificateHashList(users);
            }
            EXPECT_TRUE(DecryptFileA(fresh, 0), "DecryptFileA(fresh.txt) unlocks the key with $EFS_PASSPHRASE_FILE");
            EXPECT_TRUE(EncryptFileA(fresh), "EncryptFileA(fresh.txt) again");
            unsetenv("EFS_PASSPHRASE_FILE");
            EXPECT_FALSE(DecryptFileA(fresh, 0), ERROR_INVALID_PASSWORD, "DecryptFileA(fresh.txt) without the passphrase");
            EXPECT_CODE(SetUserFileEncryptionKey(&user_cert), ERROR_SUCCESS, "back to the first key");
            free(fresh);
            free(wfresh);
        } else {
            printf("     (EFS_EXAMPLE_PASSPHRASE_FILE not set: SetUserFileEncryptionKey(NULL) with a passphrase skipped)\n");
        }
    }

    // MARK: DecryptFile
    section("DecryptFileA / DecryptFileW");
    {
        size_t n = 0;
        BYTE *back;
        EXPECT_FALSE(DecryptFileA(report, 1), ERROR_INVALID_PARAMETER, "DecryptFileA with dwReserved = 1");
        EXPECT_TRUE(DecryptFileA(report, 0), "DecryptFileA(report.txt)");
        EXPECT_CODE(status_of(report), FILE_ENCRYPTABLE, "report.txt is no longer encrypted");
        back = read_file(report, &n);
        CHECK(back && n == doc_len && memcmp(back, doc, n) == 0, "report.txt holds the original text");
        free(back);
        EXPECT_TRUE(DecryptFileA(report, 0), "DecryptFileA on a plain file is a no-op");
        EXPECT_TRUE(DecryptFileW(wrestored, 0), "DecryptFileW(restored file)");
        back = read_file(restored, &n);
        CHECK(back && n == doc_len && memcmp(back, doc, n) == 0, "the restored file decrypts to the original text");
        free(back);
    }

    // MARK: Bad arguments
    section("Bad arguments and missing files");
    {
        PVOID ctx = NULL;
        char *missing = join(vol, "missing.txt");
        char *nodir = join(vol, "no-such-dir/x.txt");
        WCHAR lone[] = {'a', 0xD800, 'b', 0};  // an unpaired surrogate
        EXPECT_CODE(OpenEncryptedFileRawA(NULL, 0, &ctx), ERROR_INVALID_PARAMETER, "OpenEncryptedFileRawA(NULL path)");
        EXPECT_CODE(OpenEncryptedFileRawW(NULL, 0, &ctx), ERROR_INVALID_PARAMETER, "OpenEncryptedFileRawW(NULL path)");
        EXPECT_CODE(OpenEncryptedFileRawA(restored, 0, NULL), ERROR_INVALID_PARAMETER, "OpenEncryptedFileRawA(NULL context pointer)");
        EXPECT_CODE(OpenEncryptedFileRawW(lone, 0, &ctx), ERROR_INVALID_PARAMETER, "a path that is not valid UTF-16");
        EXPECT_CODE(OpenEncryptedFileRawA(missing, 0, &ctx), ERROR_FILE_NOT_FOUND, "export of a missing file");
        EXPECT_CODE(OpenEncryptedFileRawA(nodir, 0, &ctx), ERROR_PATH_NOT_FOUND, "export in a missing directory");
        EXPECT_CODE(OpenEncryptedFileRawA(nodir, CREATE_FOR_IMPORT, &ctx), ERROR_PATH_NOT_FOUND, "import into a missing directory");
        Sink s = {0};
        EXPECT_CODE(ReadEncryptedFileRaw(export_to_backup, &s, NULL), ERROR_INVALID_PARAMETER, "ReadEncryptedFileRaw(NULL context)");
        EXPECT_CODE(WriteEncryptedFileRaw(import_from_backup, &s, NULL), ERROR_INVALID_PARAMETER, "WriteEncryptedFileRaw(NULL context)");
        char *encrypted = join(vol, ".hidden.txt");
        EXPECT_CODE(OpenEncryptedFileRawA(encrypted, 0, &ctx), ERROR_SUCCESS, "open for the NULL-callback checks");
        free(encrypted);
        EXPECT_CODE(ReadEncryptedFileRaw(NULL, NULL, ctx), ERROR_INVALID_PARAMETER, "ReadEncryptedFileRaw(NULL callback)");
        EXPECT_CODE(WriteEncryptedFileRaw(NULL, NULL, ctx), ERROR_INVALID_PARAMETER, "WriteEncryptedFileRaw(NULL callback)");
        CloseEncryptedFileRaw(ctx);
        CloseEncryptedFileRaw(NULL);
        CHECK(1, "CloseEncryptedFileRaw(NULL) is a no-op");
        EXPECT_FALSE(EncryptFileA(NULL), ERROR_INVALID_PARAMETER, "EncryptFileA(NULL)");
        EXPECT_FALSE(EncryptFileW(NULL), ERROR_INVALID_PARAMETER, "EncryptFileW(NULL)");
        EXPECT_FALSE(EncryptFileA(missing), ERROR_FILE_NOT_FOUND, "EncryptFileA(missing file)");
        EXPECT_FALSE(EncryptFileA(nodir), ERROR_PATH_NOT_FOUND, "EncryptFileA(file in a missing directory)");
        EXPECT_FALSE(DecryptFileW(NULL, 0), ERROR_INVALID_PARAMETER, "DecryptFileW(NULL)");
        EXPECT_FALSE(FileEncryptionStatusA(report, NULL), ERROR_INVALID_PARAMETER, "FileEncryptionStatusA(NULL status)");
        EXPECT_FALSE(FileEncryptionStatusA(missing, &st), ERROR_FILE_NOT_FOUND, "FileEncryptionStatusA(missing file)");
        EXPECT_FALSE(EncryptionDisable(NULL, TRUE), ERROR_INVALID_PARAMETER, "EncryptionDisable(NULL)");
        EXPECT_CODE(DuplicateEncryptionInfoFile(NULL, wreport, CREATE_NEW, 0, NULL), ERROR_INVALID_PARAMETER,
                    "DuplicateEncryptionInfoFile(NULL source)");
        free(missing);
        free(nodir);
    }

    section("GetLastError is per thread");
    {
        pthread_t t;
        void *theirs = NULL;
        SetLastError(1234);
        CHECK(pthread_create(&t, NULL, other_thread, NULL) == 0 && pthread_join(t, &theirs) == 0, "run a thread");
        CHECK((uintptr_t)theirs == 99 && GetLastError() == 1234, "each thread has its own last error");
    }

    free(stream.data);
    free(doc);
    free(report);
    free(plain);
    free(restored);
    free(backup);
    free(wvol);
    free(wreport);
    free(wplain);
    free(wrestored);
    free(user_der);
    free(other_der);
    printf("\n%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
