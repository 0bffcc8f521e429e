// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import CEFSWin32
import EFS

// The lists the Query functions return belong to the C caller, who frees them with
// FreeEncryptionCertificateHashList; they come from the C heap, as on Windows. These two functions are the only
// C library calls of this target: they are the memory contract of the C ABI, not system calls, so they are
// imported here by name rather than wrapped in EFSSystem.
import func Glibc.free
import func Glibc.malloc

/// The C heap, for memory handed to the C caller.
enum CHeap {
    /// `malloc` room for `count` values of `T`, uninitialized.
    ///
    /// - Throws: `ERROR_NOT_ENOUGH_MEMORY` when `malloc` fails.
    static func allocate<T>(_: T.Type, count: Int) throws(Win32Error) -> UnsafeMutablePointer<T> {
        let (bytes, overflow) = MemoryLayout<T>.stride.multipliedReportingOverflow(by: max(count, 1))
        guard !overflow, let raw = malloc(bytes) else { throw Win32Error(code: DWORD(ERROR_NOT_ENOUGH_MEMORY)) }
        // Unsafe: malloc returns memory aligned for any object type, `bytes` long, so it holds `count` values of T.
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    /// `free`s memory from ``allocate(_:count:)``. NULL is a no-op.
    static func free(_ pointer: UnsafeMutableRawPointer?) {
        // Unsafe: `pointer` is NULL or came from malloc and is freed once (the caller's invariant).
        Glibc.free(pointer)
    }
}

/// `ENCRYPTION_CERTIFICATE_HASH_LIST`s out (Query*), and the certificate and hash lists the caller passes in.
///
/// A returned list is one `ENCRYPTION_CERTIFICATE_HASH_LIST` whose `pUsers` array (NULL when empty) points to
/// one `ENCRYPTION_CERTIFICATE_HASH` per entry, each with `cbTotalLength = sizeof(ENCRYPTION_CERTIFICATE_HASH)`,
/// `pUserSid = NULL`, `pHash` → an `EFS_HASH_BLOB` of the 20-byte SHA-1 thumbprint, and `lpDisplayInformation`
/// the certificate's display name in NUL-terminated UTF-16. Every piece is its own `malloc` block.
enum HashLists {
    // MARK: - Out

    /// A new list of `entries`, for the caller to free with `FreeEncryptionCertificateHashList`.
    static func make(_ entries: [CertificateHash]) throws(Win32Error) -> PENCRYPTION_CERTIFICATE_HASH_LIST {
        guard entries.count <= Limits.maximumEntriesPerList else { throw .invalidParameter }
        let list = try CHeap.allocate(ENCRYPTION_CERTIFICATE_HASH_LIST.self, count: 1)
        // Unsafe: `list` is fresh, room for one struct; it is complete (count 0, no array) before anything else can
        // fail, so `free(list)` is always safe.
        list.initialize(to: ENCRYPTION_CERTIFICATE_HASH_LIST(nCert_Hash: 0, pUsers: nil))
        do {
            guard !entries.isEmpty else { return list }
            let users = try CHeap.allocate(PENCRYPTION_CERTIFICATE_HASH?.self, count: entries.count)
            // Unsafe: `users` has room for entries.count pointers; all start NULL so a partial list frees cleanly.
            users.initialize(repeating: nil, count: entries.count)
            list.pointee.pUsers = users
            for (i, entry) in entries.enumerated() {
                // Unsafe: i < entries.count, the array's length; nCert_Hash counts only the entries filled in.
                users[i] = try makeEntry(entry)
                list.pointee.nCert_Hash = DWORD(i + 1)
            }
            return list
        } catch {
            Self.free(list)
            throw error
        }
    }

    private static func makeEntry(_ entry: CertificateHash) throws(Win32Error) -> PENCRYPTION_CERTIFICATE_HASH {
        let hash = try CHeap.allocate(ENCRYPTION_CERTIFICATE_HASH.self, count: 1)
        // Unsafe: `hash` is fresh, room for one struct; it is complete (all NULL) before anything else can fail.
        hash.initialize(to: ENCRYPTION_CERTIFICATE_HASH(
            cbTotalLength: DWORD(MemoryLayout<ENCRYPTION_CERTIFICATE_HASH>.size), pUserSid: nil, pHash: nil,
            lpDisplayInformation: nil))
        do {
            let blob = try CHeap.allocate(EFS_HASH_BLOB.self, count: 1)
            // Unsafe: `blob` is fresh, room for one struct.
            blob.initialize(to: EFS_HASH_BLOB(cbData: 0, pbData: nil))
            hash.pointee.pHash = blob
            let bytes = entry.thumbprint.bytes
            let data = try CHeap.allocate(BYTE.self, count: bytes.count)
            // Unsafe: `data` has room for bytes.count bytes (a thumbprint is 20, never empty).
            bytes.withUnsafeBufferPointer { data.initialize(from: $0.baseAddress!, count: bytes.count) }
            blob.pointee = EFS_HASH_BLOB(cbData: DWORD(bytes.count), pbData: data)
            hash.pointee.lpDisplayInformation = try Strings.allocateUTF16(entry.displayName)
            return hash
        } catch {
            freeEntry(hash)
            throw error
        }
    }

    /// `FreeEncryptionCertificateHashList`'s work.
    static func free(_ list: PENCRYPTION_CERTIFICATE_HASH_LIST) {
        // Unsafe: `list` came from make(_:) (the API contract) and is intact: pUsers is NULL or an array of
        // nCert_Hash entries, each NULL or from makeEntry(_:).
        if let users = list.pointee.pUsers {
            for i in 0..<Int(list.pointee.nCert_Hash) {
                if let entry = users[i] { freeEntry(entry) }
            }
            CHeap.free(users)
        }
        CHeap.free(list)
    }

    private static func freeEntry(_ entry: PENCRYPTION_CERTIFICATE_HASH) {
        // Unsafe: `entry` came from makeEntry(_:): each pointer in it is NULL or its own malloc block.
        if let blob = entry.pointee.pHash {
            CHeap.free(blob.pointee.pbData)
            CHeap.free(blob)
        }
        CHeap.free(entry.pointee.lpDisplayInformation)
        CHeap.free(entry)
    }

    // MARK: - In

    /// The thumbprints of a caller's `ENCRYPTION_CERTIFICATE_HASH_LIST` (RemoveUsersFromEncryptedFile).
    ///
    /// Hashes of 20 bytes are SHA-1 thumbprints; other lengths (up to 100 bytes) match nothing and are ignored,
    /// as unknown hashes are.
    ///
    /// - Throws: `ERROR_INVALID_PARAMETER` for NULL pointers, more than 500 entries or a hash over 100 bytes.
    static func thumbprints(_ list: PENCRYPTION_CERTIFICATE_HASH_LIST?) throws(Win32Error) -> [Thumbprint] {
        guard let list else { throw .invalidParameter }
        // Unsafe: `list` points to a caller's ENCRYPTION_CERTIFICATE_HASH_LIST (the API contract); pUsers has
        // nCert_Hash entries, checked against the limit before any is read.
        let count = Int(list.pointee.nCert_Hash)
        guard count <= Limits.maximumEntriesPerList else { throw .invalidParameter }
        guard count > 0 else { return [] }
        guard let users = list.pointee.pUsers else { throw .invalidParameter }
        var out: [Thumbprint] = []
        for i in 0..<count {
            // Unsafe: i < nCert_Hash; each entry and its pHash are checked for NULL before use.
            guard let entry = users[i], let blob = entry.pointee.pHash else { throw .invalidParameter }
            let size = Int(blob.pointee.cbData)
            guard size <= Limits.maximumThumbprintSize else { throw .invalidParameter }
            guard size > 0 else { continue }
            guard let data = blob.pointee.pbData else { throw .invalidParameter }
            // Unsafe: pbData holds cbData bytes (the EFS_HASH_BLOB contract), at most 100, checked above.
            if let t = Thumbprint(bytes: UnsafeBufferPointer(start: data, count: size)) { out.append(t) }
        }
        return out
    }

    /// The certificates of a caller's `ENCRYPTION_CERTIFICATE_LIST` (AddUsersToEncryptedFile).
    ///
    /// - Throws: `ERROR_INVALID_PARAMETER` for NULL pointers or more than 500 entries, and as
    ///   ``certificate(_:)`` does for each entry.
    static func certificates(_ list: PENCRYPTION_CERTIFICATE_LIST?) throws(Win32Error) -> [EFSCertificate] {
        guard let list else { throw .invalidParameter }
        // Unsafe: `list` points to a caller's ENCRYPTION_CERTIFICATE_LIST (the API contract); pUsers has nUsers
        // entries, checked against the limit before any is read.
        let count = Int(list.pointee.nUsers)
        guard count <= Limits.maximumEntriesPerList else { throw .invalidParameter }
        guard count > 0 else { return [] }
        guard let users = list.pointee.pUsers else { throw .invalidParameter }
        var out: [EFSCertificate] = []
        for i in 0..<count {
            // Unsafe: i < nUsers.
            out.append(try certificate(users[i]))
        }
        return out
    }

    /// The certificate of a caller's `ENCRYPTION_CERTIFICATE`: DER (`X509_ASN_ENCODING`), at most 32 KiB.
    ///
    /// - Throws: `ERROR_INVALID_PARAMETER` for NULL pointers, another encoding, an empty or oversized blob, or
    ///   bytes that are not an X.509 certificate; `ERROR_NOT_SUPPORTED` for a key type EFS cannot use.
    static func certificate(_ certificate: PENCRYPTION_CERTIFICATE?) throws(Win32Error) -> EFSCertificate {
        // Unsafe: `certificate` points to a caller's ENCRYPTION_CERTIFICATE (the API contract); pCertBlob is
        // checked for NULL before use.
        guard let certificate, let blob = certificate.pointee.pCertBlob else { throw .invalidParameter }
        guard blob.pointee.dwCertEncodingType == DWORD(X509_ASN_ENCODING) else { throw .invalidParameter }
        let size = Int(blob.pointee.cbData)
        guard size > 0, size <= Limits.maximumCertificateSize, let data = blob.pointee.pbData else {
            throw .invalidParameter
        }
        // Unsafe: pbData holds cbData bytes (the EFS_CERTIFICATE_BLOB contract), at most 32 KiB, checked above.
        // They are copied before parsing, so the caller's buffer is not read again.
        let der = Array(UnsafeBufferPointer(start: data, count: size))
        do {
            return try EFSCertificate(der: der)
        } catch {
            throw Win32Error(code: DWORD(error.code == .unsupportedAlgorithm ? ERROR_NOT_SUPPORTED : ERROR_INVALID_PARAMETER))
        }
    }
}

/// `FreeEncryptionCertificateHashList`: frees a list returned by `QueryUsersOnEncryptedFile` or
/// `QueryRecoveryAgentsOnEncryptedFile`, with everything it points to. NULL is a no-op.
@_cdecl("FreeEncryptionCertificateHashList")
public func freeEncryptionCertificateHashList(_ pUsers: PENCRYPTION_CERTIFICATE_HASH_LIST?) {
    guard let pUsers else { return }
    HashLists.free(pUsers)
}
