/* SPDX-License-Identifier: Apache-2.0
 * This file is part of swift-efs. See LICENSE for details.
 *
 * efs.h: the Windows Encrypting File System API (advapi32, declared in winbase.h and winefs.h) for Linux.
 *
 * Link with libefsapi.so:
 *
 *     cc prog.c -I Sources/CEFSWin32/include -L .build/debug -lefsapi -Wl,-rpath,$PWD/.build/debug -o prog
 *
 * The prototypes, flags, structures and error codes are those of the Windows SDK (see
 * shared/spec/win32-efs-api.md sections 1 and 2), so C code written for Windows compiles unchanged apart from
 * the #include. Differences from Windows, all of them Linux facts:
 *
 * - Strings. The "A" functions take UTF-8 paths, passed to the kernel byte for byte (any byte string Linux
 *   accepts works). The "W" functions take NUL-terminated UTF-16 (WCHAR is char16_t, not the 32-bit wchar_t of
 *   Linux): write literals as u"..." or, with GCC or Clang, build with -fshort-wchar so that L"..." literals are
 *   16-bit (C only: in C++ wchar_t and char16_t stay distinct types and need a cast; and with -fshort-wchar the
 *   wcs* functions of glibc no longer match the compiler's wchar_t, so do not mix the two). A W path that is not
 *   valid UTF-16 (an unpaired surrogate) fails with ERROR_INVALID_PARAMETER. Backslashes are not path
 *   separators on Linux: build paths with '/'.
 *
 * - The calling user. Windows acts for the logged-on user and unlocks the user's keys through LSA. Here the
 *   user's key store is $EFS_HOME (else $XDG_DATA_HOME/efs, else ~/.local/share/efs), the same one the `efs`
 *   command line tool uses. A passphrase-protected private key is unlocked with the first line of the file
 *   named by $EFS_PASSPHRASE_FILE; when that variable is unset (or empty), only private keys stored without a
 *   passphrase (`efs key new --no-passphrase`) can be used, and calls needing a protected key fail with
 *   ERROR_INVALID_PASSWORD. Calls that need no private key (EncryptFile, FileEncryptionStatus, the raw API,
 *   the Query functions, EncryptionDisable) work without it. The environment is read on every call.
 *
 * - SetUserFileEncryptionKey(NULL) makes a new EC P-256 key and certificate named after the login user,
 *   protected with the $EFS_PASSPHRASE_FILE passphrase. Without that variable it fails with
 *   ERROR_INVALID_PARAMETER: it never stores an unprotected private key on its own.
 *
 * - Last error. The functions that return BOOL set the calling thread's last error (GetLastError) on failure
 *   and reset it to ERROR_SUCCESS on success. The functions that return DWORD return the error code and leave
 *   the last error alone.
 *
 * - Security. pUserSid and lpSecurityAttributes are accepted and ignored (Linux has no SIDs; a new file gets
 *   mode 0666 minus the umask). Query results carry pUserSid = NULL.
 *
 * - Lifetime. Lists returned by the Query functions are allocated with malloc; free them with
 *   FreeEncryptionCertificateHashList only. A raw context is freed by CloseEncryptedFileRaw. A context that
 *   was never returned or is already closed is refused (ERROR_INVALID_PARAMETER; CloseEncryptedFileRaw ignores
 *   it), but do not rely on that: once closed, the same address may be handed out again for a new context.
 */
#ifndef SWIFT_EFS_EFS_H
#define SWIFT_EFS_EFS_H

#include <stdint.h>
#ifndef __cplusplus
#include <uchar.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* MARK: - Windows base types (windef.h, winnt.h) */

#ifndef WINAPI
#define WINAPI /* stdcall on 32-bit Windows; the platform C convention here */
#endif
#ifndef WINADVAPI
#define WINADVAPI
#endif
#ifndef VOID
#define VOID void
#endif
#ifndef CONST
#define CONST const
#endif

typedef uint32_t DWORD;
typedef uint32_t ULONG;
typedef ULONG *PULONG;
typedef DWORD *PDWORD;
typedef DWORD *LPDWORD;
typedef void *PVOID;
typedef void *LPVOID;
typedef uint8_t BYTE;
typedef BYTE *PBYTE;
typedef int BOOL;
typedef char CHAR;
typedef CHAR *LPSTR;
typedef const CHAR *LPCSTR;
typedef char16_t WCHAR; /* UTF-16 code unit */
typedef WCHAR *LPWSTR;
typedef const WCHAR *LPCWSTR;

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

/* A Windows security identifier. Opaque: swift-efs never reads or writes one. */
typedef struct _SID SID;
typedef SID *PSID;
#define MAX_SID_SIZE 256

/* Accepted by DuplicateEncryptionInfoFile and ignored. */
typedef void *LPSECURITY_ATTRIBUTES;

/* MARK: - Win32 error codes (winerror.h) */

#define ERROR_SUCCESS 0L
#define ERROR_INVALID_FUNCTION 1L
#define ERROR_FILE_NOT_FOUND 2L
#define ERROR_PATH_NOT_FOUND 3L
#define ERROR_ACCESS_DENIED 5L
#define ERROR_NOT_ENOUGH_MEMORY 8L
#define ERROR_SHARING_VIOLATION 32L
#define ERROR_NOT_SUPPORTED 50L
#define ERROR_FILE_EXISTS 80L
#define ERROR_INVALID_PASSWORD 86L
#define ERROR_INVALID_PARAMETER 87L
#define ERROR_CALL_NOT_IMPLEMENTED 120L
#define ERROR_IO_DEVICE 1117L
#define ERROR_CANCELLED 1223L
#define ERROR_FILE_CORRUPT 1392L
#define ERROR_ENCRYPTION_FAILED 6000L
#define ERROR_DECRYPTION_FAILED 6001L
#define ERROR_FILE_ENCRYPTED 6002L
#define ERROR_NO_RECOVERY_POLICY 6003L
#define ERROR_NO_EFS 6004L
#define ERROR_WRONG_EFS 6005L
#define ERROR_NO_USER_KEYS 6006L
#define ERROR_FILE_NOT_ENCRYPTED 6007L
#define ERROR_NOT_EXPORT_FORMAT 6008L
#define ERROR_FILE_READ_ONLY 6009L
#define ERROR_DIR_EFS_DISALLOWED 6010L
#define ERROR_EFS_SERVER_NOT_TRUSTED 6011L
#define ERROR_BAD_RECOVERY_POLICY 6012L
#define ERROR_EFS_ALG_BLOB_TOO_BIG 6013L
#define ERROR_VOLUME_NOT_SUPPORT_EFS 6014L
#define ERROR_EFS_DISABLED 6015L
#define ERROR_EFS_VERSION_NOT_SUPPORT 6016L

/* The calling thread's last error, set by the functions below that return BOOL. */
WINADVAPI DWORD WINAPI GetLastError(void);
WINADVAPI VOID WINAPI SetLastError(DWORD dwErrCode);

/* MARK: - Raw backup and restore (winbase.h) */

/* Called by ReadEncryptedFileRaw with each block of the stream. Return ERROR_SUCCESS to continue; any other
 * value stops the export, and ReadEncryptedFileRaw returns that value. */
typedef DWORD(WINAPI *PFE_EXPORT_FUNC)(PBYTE pbData, PVOID pvCallbackContext, ULONG ulLength);

/* Called by WriteEncryptedFileRaw for more of the stream. On entry *ulLength is the capacity of pbData; store
 * at most that many bytes and set *ulLength to the count. *ulLength = 0 with ERROR_SUCCESS ends the stream; any
 * other return value stops the import, and WriteEncryptedFileRaw returns that value. */
typedef DWORD(WINAPI *PFE_IMPORT_FUNC)(PBYTE pbData, PVOID pvCallbackContext, PULONG ulLength);

/* OpenEncryptedFileRaw flags. Unknown bits are ignored. */
#define CREATE_FOR_IMPORT (1)
#define CREATE_FOR_DIR (2)
#define OVERWRITE_HIDDEN (4) /* on Linux, "hidden" means a name starting with '.' */
#define EFSRPC_SECURE_ONLY (8) /* accepted and ignored (it concerns RPC transport security on Windows) */
#define EFS_DROP_ALTERNATE_STREAMS (0x10)

WINADVAPI DWORD WINAPI OpenEncryptedFileRawA(LPCSTR lpFileName, ULONG ulFlags, PVOID *pvContext);
WINADVAPI DWORD WINAPI OpenEncryptedFileRawW(LPCWSTR lpFileName, ULONG ulFlags, PVOID *pvContext);
WINADVAPI DWORD WINAPI ReadEncryptedFileRaw(PFE_EXPORT_FUNC pfExportCallback, PVOID pvCallbackContext, PVOID pvContext);
WINADVAPI DWORD WINAPI WriteEncryptedFileRaw(PFE_IMPORT_FUNC pfImportCallback, PVOID pvCallbackContext, PVOID pvContext);
WINADVAPI VOID WINAPI CloseEncryptedFileRaw(PVOID pvContext);

/* MARK: - Encrypting and decrypting (winbase.h) */

/* FileEncryptionStatus values. */
#define FILE_ENCRYPTABLE 0
#define FILE_IS_ENCRYPTED 1
#define FILE_SYSTEM_ATTR 2
#define FILE_ROOT_DIR 3
#define FILE_SYSTEM_DIR 4
#define FILE_UNKNOWN 5
#define FILE_SYSTEM_NOT_SUPPORT 6
#define FILE_USER_DISALLOWED 7
#define FILE_READ_ONLY 8
#define FILE_DIR_DISALLOWED 9

WINADVAPI BOOL WINAPI EncryptFileA(LPCSTR lpFileName);
WINADVAPI BOOL WINAPI EncryptFileW(LPCWSTR lpFileName);
/* dwReserved must be 0. */
WINADVAPI BOOL WINAPI DecryptFileA(LPCSTR lpFileName, DWORD dwReserved);
WINADVAPI BOOL WINAPI DecryptFileW(LPCWSTR lpFileName, DWORD dwReserved);
WINADVAPI BOOL WINAPI FileEncryptionStatusA(LPCSTR lpFileName, LPDWORD lpStatus);
WINADVAPI BOOL WINAPI FileEncryptionStatusW(LPCWSTR lpFileName, LPDWORD lpStatus);
/* Writes [Encryption] Disable=1 (or 0) to DirPath/Desktop.ini. */
WINADVAPI BOOL WINAPI EncryptionDisable(LPCWSTR DirPath, BOOL Disable);

#ifdef UNICODE
#define EncryptFile EncryptFileW
#define DecryptFile DecryptFileW
#define FileEncryptionStatus FileEncryptionStatusW
#define OpenEncryptedFileRaw OpenEncryptedFileRawW
#else
#define EncryptFile EncryptFileA
#define DecryptFile DecryptFileA
#define FileEncryptionStatus FileEncryptionStatusA
#define OpenEncryptedFileRaw OpenEncryptedFileRawA
#endif

/* MARK: - Users and recovery agents (winefs.h) */

/* dwCertEncodingType values. Only X509_ASN_ENCODING (DER) is accepted. */
#define X509_ASN_ENCODING 0x00000001
#define X509_NDR_ENCODING 0x00000002

/* DuplicateEncryptionInfoFile dwCreationDistribution values; any value other than CREATE_NEW means
 * CREATE_ALWAYS. */
#ifndef CREATE_NEW
#define CREATE_NEW 1
#endif
#ifndef CREATE_ALWAYS
#define CREATE_ALWAYS 2
#endif

/* A certificate. cbData at most 32768. */
typedef struct _CERTIFICATE_BLOB {
    DWORD dwCertEncodingType;
    DWORD cbData;
    PBYTE pbData;
} EFS_CERTIFICATE_BLOB, *PEFS_CERTIFICATE_BLOB;

/* A certificate hash: the SHA-1 thumbprint (20 bytes) of the DER certificate. cbData at most 100. */
typedef struct _EFS_HASH_BLOB {
    DWORD cbData;
    PBYTE pbData;
} EFS_HASH_BLOB, *PEFS_HASH_BLOB;

typedef struct _ENCRYPTION_CERTIFICATE {
    DWORD cbTotalLength;
    SID *pUserSid;
    PEFS_CERTIFICATE_BLOB pCertBlob;
} ENCRYPTION_CERTIFICATE, *PENCRYPTION_CERTIFICATE;

typedef struct _ENCRYPTION_CERTIFICATE_HASH {
    DWORD cbTotalLength;
    SID *pUserSid;
    PEFS_HASH_BLOB pHash;
    LPWSTR lpDisplayInformation;
} ENCRYPTION_CERTIFICATE_HASH, *PENCRYPTION_CERTIFICATE_HASH;

/* nCert_Hash at most 500. */
typedef struct _ENCRYPTION_CERTIFICATE_HASH_LIST {
    DWORD nCert_Hash;
    PENCRYPTION_CERTIFICATE_HASH *pUsers;
} ENCRYPTION_CERTIFICATE_HASH_LIST, *PENCRYPTION_CERTIFICATE_HASH_LIST;

/* nUsers at most 500. */
typedef struct _ENCRYPTION_CERTIFICATE_LIST {
    DWORD nUsers;
    PENCRYPTION_CERTIFICATE *pUsers;
} ENCRYPTION_CERTIFICATE_LIST, *PENCRYPTION_CERTIFICATE_LIST;

WINADVAPI DWORD WINAPI QueryUsersOnEncryptedFile(LPCWSTR lpFileName, PENCRYPTION_CERTIFICATE_HASH_LIST *pUsers);
WINADVAPI DWORD WINAPI QueryRecoveryAgentsOnEncryptedFile(LPCWSTR lpFileName,
                                                          PENCRYPTION_CERTIFICATE_HASH_LIST *pRecoveryAgents);
WINADVAPI DWORD WINAPI RemoveUsersFromEncryptedFile(LPCWSTR lpFileName, PENCRYPTION_CERTIFICATE_HASH_LIST pHashes);
WINADVAPI DWORD WINAPI AddUsersToEncryptedFile(LPCWSTR lpFileName, PENCRYPTION_CERTIFICATE_LIST pEncryptionCertificates);
WINADVAPI DWORD WINAPI SetUserFileEncryptionKey(PENCRYPTION_CERTIFICATE pEncryptionCertificate);
WINADVAPI VOID WINAPI FreeEncryptionCertificateHashList(PENCRYPTION_CERTIFICATE_HASH_LIST pUsers);
WINADVAPI DWORD WINAPI DuplicateEncryptionInfoFile(LPCWSTR SrcFileName, LPCWSTR DstFileName,
                                                   DWORD dwCreationDistribution, DWORD dwAttributes,
                                                   CONST LPSECURITY_ATTRIBUTES lpSecurityAttributes);

#ifdef __cplusplus
}
#endif

#endif /* SWIFT_EFS_EFS_H */
