// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import CEFSWin32
import EFS
import EFSSystem
import SystemPackage

// The companion EFS functions of winbase.h and winefs.h (win32-efs-api.md §2), over ``EFSSession``. The BOOL
// functions report failures through the thread's last error; the DWORD functions return the code.

// MARK: - EncryptFile

/// `EncryptFileA`: encrypts a file in place, or marks a directory so new files in it are encrypted. Already
/// encrypted → `TRUE`. The file's user is the caller's current key; its recovery agents, the volume's policy.
@_cdecl("EncryptFileA")
public func encryptFileA(_ lpFileName: LPCSTR?) -> BOOL {
    returningBool { try encryptFile(try Strings.path(lpFileName)) }
}

/// `EncryptFileW`: ``encryptFileA(_:)`` with a UTF-16 path.
@_cdecl("EncryptFileW")
public func encryptFileW(_ lpFileName: LPCWSTR?) -> BOOL {
    returningBool { try encryptFile(try Strings.path(lpFileName)) }
}

private func encryptFile(_ path: FilePath) throws(Win32Error) {
    try on(path) { try CallerSession.current().encryptFile(at: path) }
}

// MARK: - DecryptFile

/// `DecryptFileA`: decrypts a file in place, or unmarks a directory. Not encrypted → `TRUE`. `dwReserved` must
/// be 0. Needs one of the caller's keys on the file.
@_cdecl("DecryptFileA")
public func decryptFileA(_ lpFileName: LPCSTR?, _ dwReserved: DWORD) -> BOOL {
    returningBool { try decryptFile(try Strings.path(lpFileName), dwReserved) }
}

/// `DecryptFileW`: ``decryptFileA(_:_:)`` with a UTF-16 path.
@_cdecl("DecryptFileW")
public func decryptFileW(_ lpFileName: LPCWSTR?, _ dwReserved: DWORD) -> BOOL {
    returningBool { try decryptFile(try Strings.path(lpFileName), dwReserved) }
}

private func decryptFile(_ path: FilePath, _ reserved: DWORD) throws(Win32Error) {
    guard reserved == 0 else { throw .invalidParameter }
    try on(path) { try CallerSession.current().decryptFile(at: path) }
}

// MARK: - FileEncryptionStatus

/// `FileEncryptionStatusA`: stores one of `FILE_ENCRYPTABLE` … `FILE_DIR_DISALLOWED` in `*lpStatus`.
@_cdecl("FileEncryptionStatusA")
public func fileEncryptionStatusA(_ lpFileName: LPCSTR?, _ lpStatus: LPDWORD?) -> BOOL {
    returningBool { try fileEncryptionStatus(try Strings.path(lpFileName), lpStatus) }
}

/// `FileEncryptionStatusW`: ``fileEncryptionStatusA(_:_:)`` with a UTF-16 path.
@_cdecl("FileEncryptionStatusW")
public func fileEncryptionStatusW(_ lpFileName: LPCWSTR?, _ lpStatus: LPDWORD?) -> BOOL {
    returningBool { try fileEncryptionStatus(try Strings.path(lpFileName), lpStatus) }
}

private func fileEncryptionStatus(_ path: FilePath, _ out: LPDWORD?) throws(Win32Error) {
    guard let out else { throw .invalidParameter }
    let status = try on(path) { try CallerSession.current().fileEncryptionStatus(at: path) }
    // Unsafe: `out` is the caller's DWORD (the LPDWORD out-parameter contract), checked for NULL above; it is
    // written only on success.
    out.pointee = status.rawValue
}

// MARK: - EncryptionDisable

/// `EncryptionDisable`: writes `[Encryption] Disable=1` (or `=0`) to the directory's `Desktop.ini`. Then
/// EncryptFile in that directory fails with `ERROR_DIR_EFS_DISALLOWED`. Fails on a file.
@_cdecl("EncryptionDisable")
public func encryptionDisable(_ DirPath: LPCWSTR?, _ Disable: BOOL) -> BOOL {
    returningBool {
        let path = try Strings.path(DirPath)
        try on(path) { try CallerSession.current().encryptionDisable(path, disable: Disable != 0) }
    }
}

// MARK: - Users and recovery agents

/// `QueryUsersOnEncryptedFile`: the file's users (DDF), recovery agents excluded. Needs no key. Free the list
/// with `FreeEncryptionCertificateHashList`.
@_cdecl("QueryUsersOnEncryptedFile")
public func queryUsersOnEncryptedFile(
    _ lpFileName: LPCWSTR?, _ pUsers: UnsafeMutablePointer<PENCRYPTION_CERTIFICATE_HASH_LIST?>?
) -> DWORD {
    query(lpFileName, pUsers) { session, path throws(EFSError) in try session.queryUsers(at: path) }
}

/// `QueryRecoveryAgentsOnEncryptedFile`: the file's recovery agents (DRF), possibly none. Needs no key. Free
/// the list with `FreeEncryptionCertificateHashList`.
@_cdecl("QueryRecoveryAgentsOnEncryptedFile")
public func queryRecoveryAgentsOnEncryptedFile(
    _ lpFileName: LPCWSTR?, _ pRecoveryAgents: UnsafeMutablePointer<PENCRYPTION_CERTIFICATE_HASH_LIST?>?
) -> DWORD {
    query(lpFileName, pRecoveryAgents) { session, path throws(EFSError) in try session.queryRecoveryAgents(at: path) }
}

private func query(_ name: LPCWSTR?, _ out: UnsafeMutablePointer<PENCRYPTION_CERTIFICATE_HASH_LIST?>?,
                   _ entries: (EFSSession, FilePath) throws(EFSError) -> [CertificateHash]) -> DWORD {
    guard let out else { return DWORD(ERROR_INVALID_PARAMETER) }
    // Unsafe: `out` is the caller's list pointer (the out-parameter contract), checked for NULL above. It is
    // cleared first and set only to a complete list.
    out.pointee = nil
    return returningCode {
        let path = try Strings.path(name)
        let found = try on(path) { try entries(CallerSession.current(), path) }
        out.pointee = try HashLists.make(found)
    }
}

/// `AddUsersToEncryptedFile`: wraps the file's key for more certificates (DER, `X509_ASN_ENCODING`). Needs one
/// of the caller's keys on the file; certificates already present are left as they are.
@_cdecl("AddUsersToEncryptedFile")
public func addUsersToEncryptedFile(_ lpFileName: LPCWSTR?, _ pEncryptionCertificates: PENCRYPTION_CERTIFICATE_LIST?) -> DWORD {
    returningCode {
        let path = try Strings.path(lpFileName)
        let certificates = try HashLists.certificates(pEncryptionCertificates)
        try on(path) { try CallerSession.current().addUsers(at: path, certificates: certificates) }
    }
}

/// `RemoveUsersFromEncryptedFile`: removes the users whose certificate hashes are listed. Unknown hashes are
/// ignored; removing every user fails with `ERROR_ACCESS_DENIED`. Needs one of the caller's keys on the file.
@_cdecl("RemoveUsersFromEncryptedFile")
public func removeUsersFromEncryptedFile(_ lpFileName: LPCWSTR?, _ pHashes: PENCRYPTION_CERTIFICATE_HASH_LIST?) -> DWORD {
    returningCode {
        let path = try Strings.path(lpFileName)
        let thumbprints = try HashLists.thumbprints(pHashes)
        try on(path) { try CallerSession.current().removeUsers(at: path, thumbprints: thumbprints) }
    }
}

// MARK: - SetUserFileEncryptionKey

/// `SetUserFileEncryptionKey`: makes the certificate's key the caller's current EFS key, used for files
/// encrypted from now on. The key store must hold the certificate (else `ERROR_FILE_NOT_FOUND`) and its private
/// key (else `ERROR_NO_USER_KEYS`).
///
/// With NULL, makes a new EC P-256 key and a self-signed certificate named after the login user, protects the
/// private key with the `$EFS_PASSPHRASE_FILE` passphrase and makes it current. Without a passphrase file it
/// fails with `ERROR_INVALID_PARAMETER`: it never stores an unprotected key on its own.
@_cdecl("SetUserFileEncryptionKey")
public func setUserFileEncryptionKey(_ pEncryptionCertificate: PENCRYPTION_CERTIFICATE?) -> DWORD {
    returningCode {
        let store = CallerSession.current().keyStore
        guard let pEncryptionCertificate else {
            guard let file = CallerSession.passphraseFile else { throw Win32Error.invalidParameter }
            let passphrase = try CallerSession.readPassphrase(file)
            guard !passphrase.isEmpty else { throw Win32Error.invalidParameter }
            _ = try store.generateKey(name: Sys.userName(), kind: .p256, recoveryAgent: false, passphrase: passphrase)
            return
        }
        let certificate = try HashLists.certificate(pEncryptionCertificate)
        try store.setCurrent(certificate.thumbprint)
    }
}

// MARK: - DuplicateEncryptionInfoFile

/// `DuplicateEncryptionInfoFile`: gives `DstFileName` the EFS users and recovery agents of `SrcFileName` (with a
/// new file key), creating it as an empty encrypted file, or an encrypted directory when the source is one.
///
/// `CREATE_NEW` fails with `ERROR_FILE_EXISTS` if the destination exists; any other value replaces it
/// (`CREATE_ALWAYS`). `dwAttributes` and `lpSecurityAttributes` are accepted and ignored. Needs one of the
/// caller's keys on the source.
@_cdecl("DuplicateEncryptionInfoFile")
public func duplicateEncryptionInfoFile(_ SrcFileName: LPCWSTR?, _ DstFileName: LPCWSTR?, _ dwCreationDistribution: DWORD,
                                        _ dwAttributes: DWORD, _ lpSecurityAttributes: LPSECURITY_ATTRIBUTES?) -> DWORD {
    returningCode {
        let source = try Strings.path(SrcFileName)
        let destination = try Strings.path(DstFileName)
        let failIfExists = dwCreationDistribution == DWORD(CREATE_NEW)
        let session = CallerSession.current()
        // A missing source is reported against the source path, anything else against the destination.
        _ = try on(source) { try session.fileEncryptionStatus(at: source) }
        try on(destination) {
            try session.duplicateEncryptionInfo(from: source, to: destination, failIfExists: failIfExists)
        }
    }
}
