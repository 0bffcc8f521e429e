// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
import EFSSystem
import Synchronization
import SystemPackage

/// The calling user, as the C ABI sees them: the key store at `KeyStore.defaultLocation()` (`$EFS_HOME`, …) and
/// the passphrase in the first line of the file named by `$EFS_PASSPHRASE_FILE`.
///
/// Windows' EFS functions act for the logged-on user, whose keys LSA unlocks once per logon. Here one session is
/// kept for the process and reused while the environment names the same key store and passphrase file, so a
/// protected key is unlocked once, not on every call. Without `$EFS_PASSPHRASE_FILE` only keys stored without a
/// passphrase can be used.
enum CallerSession {
    /// The most bytes read from the passphrase file (its first line is used), as in the `efs` tool.
    static let maximumPassphraseFileSize = 4_096

    private struct Identity: Equatable {
        var keyStore: FilePath
        var passphraseFile: String?
    }

    private static let cached = Mutex<(identity: Identity, session: EFSSession)?>(nil)

    /// `$EFS_PASSPHRASE_FILE`, unless unset or empty.
    static var passphraseFile: String? {
        Sys.environment("EFS_PASSPHRASE_FILE").flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The session for the current environment.
    static func current() -> EFSSession {
        let identity = Identity(keyStore: KeyStore.defaultLocation(), passphraseFile: passphraseFile)
        return cached.withLock { (slot: inout (identity: Identity, session: EFSSession)?) -> EFSSession in
            if let slot, slot.identity == identity { return slot.session }
            let session = EFSSession(keyStore: KeyStore(root: identity.keyStore), passphrase: provider(identity.passphraseFile))
            slot = (identity, session)
            return session
        }
    }

    /// Reads the passphrase file when a key must be unlocked; nil (only unprotected keys) without one.
    private static func provider(_ file: String?) -> PassphraseProvider? {
        guard let file else { return nil }
        return { _ in try readPassphrase(file) }
    }

    /// The first line of `file`.
    static func readPassphrase(_ file: String) throws(EFSError) -> Passphrase {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(maximumPassphraseFileSize)  // one buffer, so no unzeroed copy is left behind
        defer { Sys.secureZero(&bytes) }
        do {
            let fd = try Sys.open(FilePath(file), .readOnly)
            defer { Sys.close(fd) }
            while bytes.count < maximumPassphraseFileSize, !bytes.contains(0x0A) {
                var chunk = try Sys.read(fd, count: maximumPassphraseFileSize - bytes.count)
                defer { Sys.secureZero(&chunk) }
                if chunk.isEmpty { break }
                bytes += chunk
            }
        } catch {
            throw EFSError(
                .wrongPassphrase, "cannot read the passphrase file \(file) ($EFS_PASSPHRASE_FILE): \(error)", cause: error)
        }
        return Passphrase(fileContents: bytes)
    }
}
